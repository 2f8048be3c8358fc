/**
 * A backend terminated inside `withTransaction` (issue 7, found by the soak): the caller must
 * get a typed connection error, as outside a transaction, not a defect.
 *
 * `@effect/sql` runs the ROLLBACK of a failed transaction under `Effect.orDie`; on a connection
 * that is gone, the ROLLBACK fails with PgConnectionLost and the caller dies. A session that
 * ended has no transaction left to roll back (the server rolled it back when the session
 * ended), so the ROLLBACK on a dead connection should succeed and let the body's typed error through.
 */
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import { PgConnectionLost } from "@scoped-pool/pg/PgError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { eventuallyActive } from "../support/backends.js"
import { classifyCause, terminateBackends } from "../support/faults.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const Pool = PgPool.layer({ url: Redacted.make(url), applicationName, max: 2 })

describe("S7 server faults: pg_terminate_backend inside withTransaction", () => {
  layer(Pool, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect("the caller gets an SqlError caused by PgConnectionLost, not a defect; the pool serves again", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const fiber = yield* Effect.fork(sql.withTransaction(sql`SELECT pg_sleep(30)`))
        yield* eventuallyActive(url, applicationName, {
          count: 1,
          queryLike: "SELECT pg_sleep(30)",
          within: "5 seconds"
        })
        yield* terminateBackends(url, applicationName)
        const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"))
        assert.isTrue(Exit.isFailure(exit))
        const cause = (exit as Exit.Failure<unknown, unknown>).cause
        assert.strictEqual(classifyCause(cause), "SqlError > PgConnectionLost(Terminated)", Cause.pretty(cause))
        const error = Cause.failureOption(cause)
        assert.isTrue(error._tag === "Some" && error.value instanceof SqlError)
        assert.instanceOf((error as { value: SqlError }).value.cause, PgConnectionLost)
        assert.deepStrictEqual(yield* sql`SELECT 1 AS one`, [{ one: 1 }])
      }))
  })
})
