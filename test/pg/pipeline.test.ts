/**
 * Issue 12 line 4: statement pipelining across fibers. When no connection is idle and the pool
 * is at `max`, a statement outside a transaction joins a busy connection (one Sync per
 * statement: each succeeds or fails on its own), up to `pipelineDepth` at once; a connection
 * whose head statement is slow, or that is being cancelled, takes none; transactions,
 * `reserve`, streams and COPY get their connection alone; `pipeline: false` never shares.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PgPool, PgPoolConfig } from "@scoped-pool/pg"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { backendsOf, eventuallyActive } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const poolOf = (overrides: Partial<PgPool.Options> = {}) =>
  PgPool.make({ url: Redacted.make(url), applicationName, min: 2, max: 2, ...overrides }).pipe(
    Effect.provide(Reactivity.layer)
  )

type Pid = { readonly pid: number; readonly n: number }

/** `count` fibers at once, each `SELECT pg_backend_pid(), n` with its own n: returns the rows. */
const burst = (pg: PgPool.PgPool.Service, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (n) => Effect.map(pg.sql<Pid>`SELECT pg_backend_pid() AS pid, ${n}::int AS n`, (rows) => rows[0]!),
    { concurrency: "unbounded" }
  )

/** `count` fibers at once, each running `SELECT pg_sleep(30)` on `pg`: returns the fibers. */
const sleepers = (pg: PgPool.PgPool.Service, count: number) =>
  Effect.forEach(
    Array.from({ length: count }),
    () => Effect.fork(pg.sql`SELECT pg_sleep(30)`),
    { concurrency: "unbounded" }
  )

describe("12.4 pipelining across fibers", () => {
  it("12.4 the default is on, at depth 8, with a 10 ms slow-head bound", () => {
    assert.strictEqual(PgPoolConfig.defaults.pipeline, true)
    assert.strictEqual(PgPoolConfig.defaults.pipelineDepth, 8)
    assert.strictEqual(Duration.toMillis(PgPoolConfig.defaults.pipelineSlowHead), 10)
  })

  it.live("12.4 at max with every connection busy, statements of different fibers share busy connections", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf()
      const rows = yield* burst(pg, 400)
      // every statement got its own answer
      assert.deepStrictEqual(rows.map((r) => r.n), Array.from({ length: 400 }, (_, i) => i))
      const stats = yield* pg.stats
      assert.isAbove(stats.sharedLeases, 0, JSON.stringify(stats))
      assert.strictEqual(stats.size, 2)
      assert.strictEqual(stats.inUse, 0)
      assert.strictEqual(new Set(rows.map((r) => r.pid)).size, 2)
    }).pipe(Effect.scoped))

  it.live("12.4 while the pool opens its min connections, statements wait for them rather than share", () =>
    Effect.gen(function*() {
      // built with one connection open; the other three are being created when the fibers start
      const pg = yield* poolOf({ min: 4, max: 4 })
      const fibers = yield* Effect.forEach(Array.from({ length: 3 }), () => Effect.fork(pg.sql`SELECT pg_sleep(30)`))
      yield* eventuallyActive(url, applicationName, { count: 3, queryLike: "SELECT pg_sleep(30)", within: "5 seconds" })
      assert.strictEqual((yield* pg.stats).sharedLeases, 0)
      yield* Effect.forEach(fibers, Fiber.interrupt)
    }).pipe(Effect.scoped))

  it.live("12.4 pipeline: false never shares a connection", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ pipeline: false })
      yield* burst(pg, 400)
      const stats = yield* pg.stats
      assert.strictEqual(stats.sharedLeases, 0)
      assert.isAbove(stats.requestsQueued, 0, "callers waited instead")
    }).pipe(Effect.scoped))

  it.live("12.4 no more than pipelineDepth statements on one connection at once", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ min: 1, max: 1, pipelineDepth: 3 })
      const conn = yield* pg.use((c) => Effect.succeed(c))
      let deepest = 0
      const probe = Effect.sync(() => {
        if (conn.queueDepth > deepest) deepest = conn.queueDepth
      })
      yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (n) => Effect.zipRight(pg.sql`SELECT ${n}::int`, probe),
        { concurrency: "unbounded", discard: true }
      )
      const stats = yield* pg.stats
      assert.isAbove(stats.sharedLeases, 0)
      assert.isAtMost(deepest, 3)
    }).pipe(Effect.scoped))

  it.live("12.4 each pipelined statement fails or succeeds on its own", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf()
      const results = yield* Effect.forEach(
        Array.from({ length: 300 }, (_, i) => i),
        (n) =>
          Effect.either(
            n % 3 === 0
              ? Effect.as(pg.sql`SELECT 1/0`, -1)
              : Effect.map(pg.sql<{ n: number }>`SELECT ${n}::int AS n`, (rows) => rows[0]!.n)
          ),
        { concurrency: "unbounded" }
      )
      results.forEach((result, n) => {
        if (n % 3 === 0) {
          assert.isTrue(Either.isLeft(result), `statement ${n} should fail`)
          assert.match(
            String((result as Either.Left<{ cause?: { _tag?: string } }, number>).left.cause?._tag),
            /PgQueryError/
          )
        } else {
          assert.deepStrictEqual(result, Either.right(n))
        }
      })
      assert.isAbove((yield* pg.stats).sharedLeases, 0)
    }).pipe(Effect.scoped))

  it.live("12.4 a connection whose head statement is slow is given no more work", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf()
      const slowPid = yield* Effect.fork(
        pg.sql<{ pid: number }>`SELECT pg_backend_pid() AS pid, pg_sleep(1.5)`
      )
      yield* eventuallyActive(url, applicationName, { count: 1, queryLike: "%pg_sleep%", within: "2 seconds" })
      const started = Date.now()
      const rows = yield* burst(pg, 300)
      const elapsed = Date.now() - started
      const slow = (yield* Fiber.join(slowPid))[0]!.pid
      // every statement ran on the other connection, and none waited for the slow one
      assert.deepStrictEqual(rows.filter((r) => r.pid === slow), [])
      assert.isBelow(elapsed, 1_000, `the burst took ${elapsed} ms`)
      assert.isAbove((yield* pg.stats).sharedLeases, 0)
    }).pipe(Effect.scoped))

  it.live("12.4 a transaction's connection is never shared", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ min: 1, max: 1 })
      const sql = pg.sql
      const order: Array<string> = []
      const inside = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
        yield* sql`SELECT txid_current()`
        yield* sql`SELECT pg_sleep(0.2)`
        order.push("commit")
      })))
      yield* eventuallyActive(url, applicationName, { count: 1, queryLike: "%pg_sleep%", within: "2 seconds" })
      // outside the transaction: were it pipelined on the transaction's connection, it would
      // run inside it and see its transaction id
      const outside = yield* sql<{ xid: string | null }>`SELECT pg_current_xact_id_if_assigned()::text AS xid`
      order.push("outside")
      yield* Fiber.join(inside)
      assert.deepStrictEqual(outside, [{ xid: null }])
      assert.deepStrictEqual(order, ["commit", "outside"])
      assert.strictEqual((yield* pg.stats).sharedLeases, 0)
    }).pipe(Effect.scoped))

  it.live("12.4 a stream's connection is never shared", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ min: 1, max: 1 })
      const sql = pg.sql
      const order: Array<string> = []
      const started = yield* Deferred.make<void>()
      const streamed = yield* Effect.fork(
        sql`SELECT n FROM generate_series(1, 300) AS n`.stream.pipe(
          Stream.tap(() => Effect.zipRight(Deferred.succeed(started, void 0), Effect.yieldNow())),
          Stream.runCount,
          Effect.tap(() => Effect.sync(() => order.push("stream")))
        )
      )
      yield* Deferred.await(started)
      const n = yield* Effect.map(sql<{ n: number }>`SELECT 7 AS n`, (rows) => rows[0]!.n)
      order.push("statement")
      assert.strictEqual(yield* Fiber.join(streamed), 300)
      assert.strictEqual(n, 7)
      assert.deepStrictEqual(order, ["stream", "statement"])
      assert.strictEqual((yield* pg.stats).sharedLeases, 0)
    }).pipe(Effect.scoped))

  it.live("12.4 a reserved connection is never shared", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ min: 1, max: 1 })
      const sql = pg.sql
      const order: Array<string> = []
      const reserved = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const conn = yield* sql.reserve
        yield* conn.execute("SELECT pg_sleep(0.2)", [], undefined)
        order.push("reserved")
      })))
      yield* eventuallyActive(url, applicationName, { count: 1, queryLike: "%pg_sleep%", within: "2 seconds" })
      yield* sql`SELECT 1`
      order.push("statement")
      yield* Fiber.join(reserved)
      assert.deepStrictEqual(order, ["reserved", "statement"])
      assert.strictEqual((yield* pg.stats).sharedLeases, 0)
    }).pipe(Effect.scoped))

  it.live("12.4 a COPY's connection is never shared", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ min: 1, max: 1 })
      const order: Array<string> = []
      const started = yield* Deferred.make<void>()
      const exported = yield* Effect.fork(
        pg.copyTo("COPY (SELECT n FROM generate_series(1, 20000) AS n) TO STDOUT").pipe(
          Stream.tap(() => Effect.zipRight(Deferred.succeed(started, void 0), Effect.yieldNow())),
          Stream.runCount,
          Effect.tap(() => Effect.sync(() => order.push("copy")))
        )
      )
      yield* Deferred.await(started)
      yield* pg.sql`SELECT 1`
      order.push("statement")
      assert.isAbove(yield* Fiber.join(exported), 0)
      assert.deepStrictEqual(order, ["copy", "statement"])
      assert.strictEqual((yield* pg.stats).sharedLeases, 0)
    }).pipe(Effect.scoped))

  it.live("12.4 a session change under pipelining is reset before the connection's next lease", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ min: 1, max: 1 })
      const sql = pg.sql
      yield* Effect.all([
        sql`SET work_mem = '1234kB'`,
        ...Array.from({ length: 20 }, () => sql`SELECT 1`)
      ], { concurrency: "unbounded", discard: true })
      const wm = yield* sql<{ wm: string }>`SELECT current_setting('work_mem') AS wm`
      assert.notStrictEqual(wm[0]!.wm, "1234kB")
    }).pipe(Effect.scoped))

  it.live("12.4 close with statements pipelined behind a running one leaves none of them running", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const pg = yield* Scope.extend(poolOf({ min: 1, max: 1, closeTimeout: "100 millis" }), scope)
      // submitted together: all four are pipelined on the one connection before the head is slow
      const fibers = yield* sleepers(pg, 4)
      yield* eventuallyActive(url, applicationName, { count: 1, queryLike: "%pg_sleep%", within: "2 seconds" })
      assert.strictEqual((yield* pg.stats).sharedLeases, 3)
      yield* Scope.close(scope, Exit.void)
      // close has returned: nothing of the pool runs on the server, not even the statements
      // that were waiting behind the head in the connection's pipeline
      assert.deepStrictEqual(yield* Effect.promise(() => backendsOf(url, applicationName)), [])
      for (const fiber of fibers) assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
    }))

  it.live("12.4 close with more busy fibers than connections leaves nothing running", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const pg = yield* Scope.extend(poolOf({ min: 1, max: 3, closeTimeout: "100 millis" }), scope)
      const fibers = yield* sleepers(pg, 10)
      yield* eventuallyActive(url, applicationName, { count: 3, queryLike: "%pg_sleep%", within: "2 seconds" })
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* Effect.promise(() => backendsOf(url, applicationName)), [])
      for (const fiber of fibers) assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
    }))

  it.effect("12.4 pipelineDepth and pipelineSlowHead are checked", () =>
    Effect.gen(function*() {
      for (
        const [options, field] of [
          [{ pipelineDepth: 1 }, "pipelineDepth"],
          [{ pipelineDepth: 2.5 }, "pipelineDepth"],
          [{ pipelineSlowHead: "soon" }, "pipelineSlowHead"],
          [{ pipeline: "yes" }, "pipeline"]
        ] as const
      ) {
        const error = yield* Effect.flip(PgPoolConfig.resolveConnection(options as PgPool.Options))
        assert.strictEqual(error.field, field)
      }
      const resolved = yield* PgPoolConfig.resolveConnection({ pipelineDepth: 4, pipelineSlowHead: "50 millis" })
      assert.deepStrictEqual(resolved.pipeline, { depth: 4, slowHeadMillis: 50 })
      assert.strictEqual((yield* PgPoolConfig.resolveConnection({ pipeline: false })).pipeline, undefined)
    }))
})
