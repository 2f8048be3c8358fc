import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { activeCount, eventuallyActive, statesOf } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const max = 4
const Pool = PgPool.layer({ url: Redacted.make(url), applicationName, max, min: max, queryTimeout: "2 seconds" })

/** Occupies every connection but one with `pg_sleep(60)` until the returned fibers are interrupted. */
const occupyAllButOne = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const fibers = yield* Effect.forEach(Array.from({ length: max - 1 }), () => Effect.fork(sql`SELECT pg_sleep(60)`))
  yield* eventuallyActive(url, applicationName, {
    count: max - 1,
    queryLike: "SELECT pg_sleep(60)",
    within: "10 seconds"
  })
  return fibers
})

describe("S3 timeout cancels on the server (D23: bounds that hold under load)", () => {
  layer(Pool, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.effect("Effect.timeout: the statement is gone on the server within 250 ms, with no free pool slot", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const busy = yield* occupyAllButOne
        const started = Date.now()
        const outcome = yield* Effect.either(sql`SELECT pg_sleep(10)`.pipe(Effect.timeout("300 millis")))
        const returnedAfter = Date.now() - started - 300
        assert.isTrue(Either.isLeft(outcome))
        // the timeout returns once the server confirmed the cancel: nothing left to wait for
        assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "SELECT pg_sleep(10)")), 0)
        // D23: order and server-side facts carry the proof (the statement is over on the server when
        // the timeout returns); the wall-time bound is generous, for two test files on two cores
        assert.isBelow(returnedAfter, 1000, `cancel confirmed ${returnedAfter} ms after the timeout`)
        // the connection is usable and not in a transaction
        assert.deepStrictEqual(yield* sql`SELECT 1 AS one`, [{ one: 1 }])
        yield* Effect.forEach(busy, Fiber.interrupt)
        const states = yield* Effect.promise(() => statesOf(url, applicationName))
        assert.isTrue(states.every((state) => state === "idle"), states.join())
      }))

    it.effect("queryTimeout: the statement fails with PgQueryTimeout after the server confirmed its cancel", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const busy = yield* occupyAllButOne
        const started = Date.now()
        const error = yield* Effect.flip(sql`SELECT pg_sleep(10)`)
        const returnedAfter = Date.now() - started - 2000
        assert.strictEqual(((error as SqlError).cause as { _tag: string })._tag, "PgQueryTimeout")
        assert.include(error.message, "did not finish within 2000 ms and was cancelled on the server")
        assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "SELECT pg_sleep(10)")), 0)
        assert.isAtLeast(returnedAfter, 0, "PgQueryTimeout before queryTimeout")
        assert.isBelow(returnedAfter, 1000, `cancel confirmed ${returnedAfter} ms after the timeout`)
        assert.deepStrictEqual(yield* sql`SELECT 2 AS two`, [{ two: 2 }])
        yield* Effect.forEach(busy, Fiber.interrupt)
      }))

    it.effect("the server's statement_timeout is set a little above queryTimeout as the safety net", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ statement_timeout: string }>`SHOW statement_timeout`
        assert.strictEqual(row!.statement_timeout, "3s")
      }))
  })
})
