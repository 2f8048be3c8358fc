/**
 * Network faults (issue 7) through an in-test TCP proxy on loopback (test/support/TcpProxy.ts)
 * in front of the shared server: a blackholed network (connect and query timeouts, and where
 * the CancelRequest goes), added latency, and a connection reset in the middle of a large
 * result. Each fault is bounded and typed, and leaves no backend and no proxied socket behind.
 *
 * Where the cancel goes: a connection sends its CancelRequest to its own host and port, here
 * the proxy, on a new side socket. When only the established connection is blackholed and new
 * connections pass (a stuck flow, a dead NAT entry), the cancel reaches the server and ends the
 * statement at queryTimeout. When everything is blackholed (the server unreachable), no cancel
 * can arrive: the caller still gets its PgQueryTimeout (the connection is destroyed after
 * cancelTimeout) and the server's statement_timeout, set a little above queryTimeout, ends
 * the statement. Both cases are tested below.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import { PgConnectError, PgConnectionLost, PgQueryTimeout } from "@scoped-pool/pg/PgError"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { backendsOf, eventuallyActive, eventuallyNoBackends } from "../support/backends.js"
import {
  classify,
  errorLines,
  eventuallyGone,
  eventuallyNotActive,
  failure,
  statementTiming,
  unhandledSpy,
  withLogs
} from "../support/faults.js"
import * as TcpProxy from "../support/TcpProxy.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)
const parsed = new URL(url)
const target = { host: parsed.hostname, port: Number(parsed.port || 5432) }
const credentials = {
  username: decodeURIComponent(parsed.username),
  password: Redacted.make(decodeURIComponent(parsed.password)),
  database: decodeURIComponent(parsed.pathname.slice(1)) || "postgres"
}

/** A proxy in front of the shared server, closed (every socket destroyed) when the test's scope closes. */
const proxied = Effect.acquireRelease(
  Effect.promise(() => TcpProxy.start(target)),
  (proxy) => Effect.promise(() => proxy.close())
)

/** A pool that connects through `proxy`, in a child scope so that the test can close it first. */
const poolThrough = (proxy: TcpProxy.TcpProxy, options: PgPool.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const pg = yield* PgPool.make({
      host: proxy.host,
      port: proxy.port,
      ...credentials,
      applicationName,
      ...options
    }).pipe(Scope.extend(scope), Effect.provide(Reactivity.layer))
    return { pg, close: Scope.close(scope, Exit.void) }
  })

/** Closes the pool, then checks that no proxied socket and no backend of this file is left. */
const closeAndCheck = (proxy: TcpProxy.TcpProxy, close: Effect.Effect<void>) =>
  Effect.gen(function*() {
    yield* close
    yield* Effect.promise(() => proxy.close())
    assert.strictEqual(proxy.openConnections(), 0)
    yield* eventuallyNoBackends(url, applicationName, { within: "2 seconds" })
  })

describe("network faults: blackhole", () => {
  it.scopedLive("connecting into a blackhole fails with PgConnectError Timeout within connectTimeout", () =>
    withLogs((_logs) =>
      Effect.gen(function*() {
        const proxy = yield* proxied
        proxy.setMode("blackhole")
        const started = Date.now()
        const error = yield* failure(
          PgConnection.make({
            host: proxy.host,
            port: proxy.port,
            user: credentials.username,
            password: credentials.password,
            database: credentials.database,
            applicationName,
            connectTimeout: "500 millis"
          }).pipe(Effect.scoped)
        )
        const elapsed = Date.now() - started
        assert.instanceOf(error, PgConnectError)
        assert.strictEqual(error.reason, "Timeout")
        assert.include(error.message, "timed out")
        assert.isAtLeast(elapsed, 490)
        assert.isBelow(elapsed, 500 + 500, `failed after ${elapsed} ms`)
        // the attempt's socket is gone
        yield* Effect.promise(() => proxy.idle(1000))
      })
    ))

  it.scopedLive("a pool with no connection fails its caller with PgConnectError Timeout within connectTimeout", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const proxy = yield* proxied
        proxy.setMode("blackhole")
        // lazy: built without connecting, so that the caller meets the blackhole (not the build)
        const { close, pg } = yield* poolThrough(proxy, {
          connectTimeout: "400 millis",
          acquireTimeout: "5 seconds",
          lazy: true
        })
        const started = Date.now()
        const error = yield* failure(pg.sql`SELECT 1`)
        const elapsed = Date.now() - started
        assert.instanceOf(error, SqlError)
        // no connection at all: waiting on would not help, so the caller fails with the connect error
        assert.strictEqual(classify(error), "SqlError > PgConnectError(Timeout)")
        assert.isBelow(elapsed, 400 + 500, `failed after ${elapsed} ms`)
        yield* closeAndCheck(proxy, close)
        // creation failures are logged (Warning, retried), never as errors
        assert.isAbove(logs.lines.filter((l) => l.message.includes("creating a resource failed")).length, 0)
        assert.deepStrictEqual(errorLines(logs), [])
      })
    ))

  it.scopedLive(
    "existing connection blackholed, new ones pass: queryTimeout fires and the CancelRequest ends the statement on the server",
    () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const unhandled = yield* unhandledSpy
          const proxy = yield* proxied
          // queryTimeout 2 s: the server's safety-net statement_timeout is 3 s
          const { close, pg } = yield* poolThrough(proxy, {
            max: 1,
            min: 1,
            queryTimeout: "2 seconds",
            cancelTimeout: "300 millis"
          })
          const fiber = yield* Effect.fork(pg.sql`SELECT pg_sleep(30)`)
          yield* eventuallyActive(url, applicationName, {
            count: 1,
            queryLike: "SELECT pg_sleep(30)",
            within: "5 seconds"
          })
          const [backend] = yield* Effect.promise(() => backendsOf(url, applicationName))
          proxy.setMode("blackhole", "existing")

          const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"))
          assert.isTrue(Exit.isFailure(exit))
          const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
          assert.instanceOf(error, SqlError)
          assert.instanceOf((error as SqlError).cause, PgQueryTimeout, classify(error))
          // The cancel arrived: the statement ended at queryTimeout (2 s), before the 3 s safety
          // net, while the backend itself is still there (its socket is held by the blackhole).
          const timing = yield* statementTiming(url, backend!.pid)
          assert.isDefined(timing)
          assert.strictEqual(timing!.state, "idle", JSON.stringify(timing))
          assert.isAtLeast(timing!.ranSeconds, 1.9, JSON.stringify(timing))
          assert.isBelow(timing!.ranSeconds, 2.9, JSON.stringify(timing))

          // the stuck connection was destroyed; the pool serves on a new one
          assert.deepStrictEqual(yield* pg.sql`SELECT 1 AS one`, [{ one: 1 }])
          const stats = yield* pg.stats
          assert.strictEqual(stats.retired.dead, 1, JSON.stringify(stats.retired))

          yield* closeAndCheck(proxy, close)
          yield* eventuallyGone(url, [backend!.pid], { within: "1 second" })
          assert.deepStrictEqual(unhandled, [])
          assert.deepStrictEqual(errorLines(logs), [])
        })
      ),
    30_000
  )

  it.scopedLive(
    "everything blackholed: no cancel can arrive, the caller still gets PgQueryTimeout and statement_timeout ends the statement",
    () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const unhandled = yield* unhandledSpy
          const proxy = yield* proxied
          // queryTimeout 1 s: the server's safety-net statement_timeout is 2 s
          const { close, pg } = yield* poolThrough(proxy, {
            max: 1,
            min: 1,
            queryTimeout: "1 second",
            cancelTimeout: "300 millis",
            acquireTimeout: "1 second",
            connectTimeout: "300 millis"
          })
          const fiber = yield* Effect.fork(pg.sql`SELECT pg_sleep(30)`)
          yield* eventuallyActive(url, applicationName, {
            count: 1,
            queryLike: "SELECT pg_sleep(30)",
            within: "5 seconds"
          })
          const [backend] = yield* Effect.promise(() => backendsOf(url, applicationName))
          proxy.setMode("blackhole")

          const started = Date.now()
          const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"))
          const returnedAfter = Date.now() - started
          const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
          assert.instanceOf((error as SqlError).cause, PgQueryTimeout, classify(error))
          assert.isBelow(returnedAfter, 1000 + 300 + 500, `returned after ${returnedAfter} ms`)
          // the cancel could not reach the server: the statement runs on until the safety net
          const running = yield* statementTiming(url, backend!.pid)
          assert.strictEqual(running?.state, "active", JSON.stringify(running))
          yield* eventuallyNotActive(url, backend!.pid, { within: "3 seconds" })
          const ended = yield* statementTiming(url, backend!.pid)
          assert.isAtLeast(ended!.ranSeconds, 1.9, JSON.stringify(ended))
          assert.isBelow(ended!.ranSeconds, 3, JSON.stringify(ended))

          // while the server is unreachable, callers get a typed, bounded error
          const unreachable = yield* failure(pg.sql`SELECT 1`)
          assert.match(classify(unreachable), /^SqlError > (PoolTimeout > )?PgConnectError\(Timeout\)$/)

          yield* closeAndCheck(proxy, close)
          assert.deepStrictEqual(unhandled, [])
          assert.deepStrictEqual(errorLines(logs), [])
        })
      ),
    30_000
  )
})

describe("network faults: added latency", () => {
  it.scopedLive("with 50 ms added per chunk, statements still succeed, one round trip slower", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const proxy = yield* proxied
        const { close, pg } = yield* poolThrough(proxy, { max: 2, min: 1 })
        const timed = Effect.gen(function*() {
          const started = Date.now()
          const rows = yield* pg.sql<{ n: number }>`SELECT ${7}::int AS n`
          assert.deepStrictEqual(rows, [{ n: 7 }])
          return Date.now() - started
        })
        const fast = yield* Effect.forEach(Array.from({ length: 5 }), () => timed)
        proxy.setMode({ latency: 50 })
        const slow = yield* Effect.forEach(Array.from({ length: 5 }), () => timed)
        proxy.setMode("pass")
        const figures = `without latency ${fast.join(", ")} ms; with 50 ms per chunk ${slow.join(", ")} ms`
        // a statement is one chunk each way at least: 2 × 50 ms
        for (const millis of slow) assert.isAtLeast(millis, 95, figures)
        assert.isBelow(Math.max(...slow), 2000, figures)
        yield* closeAndCheck(proxy, close)
        // latency alone is no fault: no Warning (the pool's churn notice aside, as every test opens one)
        assert.deepStrictEqual(logs.noisy().filter((l) => !l.message.includes("opened and closed")), [])
      })
    ))
})

describe("network faults: connection reset mid-result", () => {
  it.scopedLive(
    "a reset in the middle of a large result fails with PgConnectionLost, retires the connection, and the pool serves again",
    () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const unhandled = yield* unhandledSpy
          const proxy = yield* proxied
          const { close, pg } = yield* poolThrough(proxy, { max: 1, min: 1 })
          const [before] = yield* pg.sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
          // about 5 MB of rows; the link breaks after the first 64 KiB of them
          proxy.setMode({ resetAfterBytes: 64 * 1024 }, "existing")
          const started = Date.now()
          const error = yield* failure(pg.sql`SELECT repeat('x', 1000) AS filler FROM generate_series(1, 5000)`)
          const elapsed = Date.now() - started
          assert.strictEqual(proxy.resets(), 1)
          assert.instanceOf(error, SqlError)
          assert.instanceOf(error.cause, PgConnectionLost, classify(error))
          assert.strictEqual((error.cause as PgConnectionLost).reason, "Closed")
          assert.strictEqual((error.cause as PgConnectionLost).processId, before!.pid)
          assert.isBelow(elapsed, 2000)

          // the pool serves again, on a new connection
          const [after] = yield* pg.sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
          assert.notStrictEqual(after!.pid, before!.pid)

          // through a raw lease: the same typed error
          proxy.setMode({ resetAfterBytes: 64 * 1024 }, "existing")
          const raw = yield* failure(
            pg.use((conn) => conn.query("SELECT repeat('x', 1000) AS filler FROM generate_series(1, 5000)", []))
          )
          assert.instanceOf(raw, PgConnectionLost, classify(raw))
          assert.strictEqual(proxy.resets(), 2)
          assert.deepStrictEqual(yield* pg.sql`SELECT 1 AS one`, [{ one: 1 }])
          const stats = yield* pg.stats
          assert.strictEqual(stats.retired.dead, 2, JSON.stringify(stats.retired))
          assert.strictEqual(stats.inUse, 0)
          // a dropped connection is no emergency: nothing above Info in the pool's logs
          assert.deepStrictEqual(errorLines(logs), [])

          yield* closeAndCheck(proxy, close)
          yield* eventuallyGone(url, [before!.pid, after!.pid], { within: "1 second" })
          assert.deepStrictEqual(unhandled, [])
        })
      ),
    30_000
  )
})
