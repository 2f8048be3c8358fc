import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { isPoolError, PgPool } from "@scoped-pool/pg"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { Worker } from "node:worker_threads"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const poolLayer = (suffix: string) =>
  PgPool.layer({ url: Redacted.make(url), applicationName: `${applicationName}-${suffix}`, max: 2 })

// A pool built inside one test and left open until all tests ran.
const leftOpen = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(leftOpen, Exit.void)))
let captured: SqlClient.SqlClient | undefined

const select1 = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1 AS one`)

/** Runs `effect` and returns its error (it must fail) and how long it took. */
const failureOf = async <E>(run: () => Promise<Either.Either<unknown, E>>) => {
  const started = Date.now()
  const result = await run()
  const millis = Date.now() - started
  assert.isTrue(Either.isLeft(result), "expected a failure")
  return { error: (result as Either.Left<E, unknown>).left, millis }
}

const causeTag = (error: unknown) =>
  error instanceof SqlError && isPoolError(error.cause) ? error.cause._tag : undefined

describe("S4 wrong runtime", () => {
  it("a pool of ManagedRuntime A used from runtime B fails at once with PoolRuntimeMismatch, after A's disposal with PoolClosed", async () => {
    const a = ManagedRuntime.make(poolLayer("a"))
    const b = ManagedRuntime.make(poolLayer("b"))
    try {
      const sqlA = await a.runPromise(SqlClient.SqlClient)
      const pgA = await a.runPromise(PgPool.PgPool)
      assert.deepStrictEqual(await a.runPromise(sqlA`SELECT 1 AS one`), [{ one: 1 }])
      await b.runPromise(select1)

      const fromB = await failureOf(() => b.runPromise(Effect.either(sqlA`SELECT 1 AS one`)))
      assert.isBelow(fromB.millis, 100)
      assert.strictEqual(causeTag(fromB.error), "PoolRuntimeMismatch")
      assert.include((fromB.error as SqlError).message, "provide the pool's Layer to this runtime")
      const raw = await failureOf(() => b.runPromise(Effect.either(pgA.use(() => Effect.void))))
      assert.strictEqual((raw.error as { _tag: string })._tag, "PoolRuntimeMismatch")

      await a.dispose()
      const afterDispose = await failureOf(() => b.runPromise(Effect.either(sqlA`SELECT 1 AS one`)))
      assert.isBelow(afterDispose.millis, 100)
      assert.strictEqual(causeTag(afterDispose.error), "PoolClosed")
    } finally {
      await a.dispose()
      await b.dispose()
    }
  })

  it("a pool captured outside any layer and run with a bare Effect.runPromise fails with PoolRuntimeMismatch", async () => {
    const a = ManagedRuntime.make(poolLayer("bare"))
    try {
      const sqlA = await a.runPromise(SqlClient.SqlClient)
      const bare = await failureOf(() => Effect.runPromise(Effect.either(sqlA`SELECT 1 AS one`)))
      assert.isBelow(bare.millis, 100)
      assert.strictEqual(causeTag(bare.error), "PoolRuntimeMismatch")
    } finally {
      await a.dispose()
    }
  })

  it("fibers of the owner pass: forkDaemon, and programs under Effect.provide(layer)", async () => {
    const a = ManagedRuntime.make(poolLayer("daemon"))
    try {
      const rows = await a.runPromise(Effect.flatMap(Effect.forkDaemon(select1), Fiber.join))
      assert.deepStrictEqual(rows, [{ one: 1 }])
    } finally {
      await a.dispose()
    }
    const provided = await Effect.runPromise(Effect.provide(select1, poolLayer("provide")))
    assert.deepStrictEqual(provided, [{ one: 1 }])
  })

  it.effect("a pool built in one it.effect (its TestClock) passes there…", () =>
    Effect.gen(function*() {
      const context = yield* Layer.buildWithScope(poolLayer("testclock"), leftOpen)
      captured = Context.get(context, SqlClient.SqlClient)
      assert.deepStrictEqual(yield* captured`SELECT 1 AS one`, [{ one: 1 }])
    }))

  it.effect("…and fails at once with PoolRuntimeMismatch when used from another it.effect", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(captured!`SELECT 1 AS one`)
      assert.strictEqual(causeTag(error), "PoolRuntimeMismatch")
    }))

  it("a pool cannot cross worker threads: the instance cannot even be sent (build one pool per worker)", async () => {
    const a = ManagedRuntime.make(poolLayer("worker"))
    try {
      const pg = await a.runPromise(PgPool.PgPool)
      let error: unknown
      try {
        const worker = new Worker("process.exit(0)", { eval: true, workerData: { pool: pg.pool } })
        await worker.terminate()
      } catch (e) {
        error = e
      }
      assert.strictEqual((error as Error | undefined)?.name, "DataCloneError")
    } finally {
      await a.dispose()
    }
  })
})
