/**
 * `withTransaction` on a real server (issue 13 line 2–3, issue 11 item 18): a COMMIT that fails
 * is the caller's typed `SqlError`; concurrent nested transactions each roll back only their
 * own work (Effect-TS/effect#6935: `@effect/sql` names every savepoint of a depth alike, so one
 * sibling's ROLLBACK TO SAVEPOINT undoes another's work); a fiber that outlives its transaction
 * never runs on the returned connection; an interrupted nested transaction rolls back only its
 * savepoint.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, layer } from "@effect/vitest"
import { PgError, PgPool } from "@scoped-pool/pg"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { eventuallyActive } from "../support/backends.js"
import { failureOf } from "../support/exits.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const table = "tx_notes"

const Tables = Layer.scopedDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const drop = Effect.zipRight(
      sql`DROP TABLE IF EXISTS ${sql(table)}`,
      sql`DROP TABLE IF EXISTS d18_deferred`
    )
    yield* drop
    yield* sql`CREATE TABLE ${sql(table)} (id serial PRIMARY KEY, note text NOT NULL)`
    yield* sql`CREATE TABLE d18_deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)`
    yield* Effect.addFinalizer(() => Effect.orDie(drop))
  }).pipe(Effect.orDie)
)

const Live = Layer.provideMerge(Tables, PgPool.layer({ url: Redacted.make(url), applicationName, max: 2 }))

const notes = (prefix: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ note: string }>`SELECT note FROM ${sql(table)} WHERE note LIKE ${prefix + "%"} ORDER BY note`,
      (rows) => rows.map((r) => r.note)
    ))

const note = (text: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO ${sql(table)} (note) VALUES (${text})`)

describe("withTransaction", () => {
  layer(Live, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.effect("D18 a COMMIT that fails (deferred unique violation) reaches the caller as a typed SqlError", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgPool.PgPool
        const exit = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO d18_deferred VALUES (1)`
          // Accepted for now: the constraint is checked at COMMIT.
          yield* sql`INSERT INTO d18_deferred VALUES (1)`
          return "body done"
        })).pipe(Effect.exit)
        const error = failureOf(exit)
        assert.instanceOf(error, SqlError)
        assert.instanceOf(error.cause, PgError.PgQueryError)
        assert.strictEqual((error.cause as PgError.PgQueryError).code, "23505")
        assert.strictEqual((error.cause as PgError.PgQueryError).constraint, "d18_deferred_id_key")
        assert.isFalse(Exit.isFailure(exit) && Cause.isDie(exit.cause), "a defect")
        // Nothing committed, and the connection came back clean.
        assert.deepStrictEqual(yield* sql`SELECT count(*)::int AS n FROM d18_deferred`, [{ n: 0 }])
        assert.strictEqual((yield* pg.stats).inUse, 0)
        assert.deepStrictEqual(yield* sql.withTransaction(sql`SELECT 1 AS one`), [{ one: 1 }])
      }))

    // Wall clock: `a` gives its sibling 200 ms to open a nested transaction of its own while `a`
    // is open. It must not: with @effect/sql's machinery it does (both savepoints named
    // effect_sql_1), and a's ROLLBACK TO SAVEPOINT then lands on b's savepoint, keeping a's write.
    it.effect("concurrent nested transactions: a failing one rolls back only its own work (Effect-TS/effect#6935)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const siblingOpened = yield* Deferred.make<void>()
        const a = sql.withTransaction(Effect.gen(function*() {
          yield* note("6935:a")
          const meanwhile = yield* Deferred.await(siblingOpened).pipe(Effect.timeout("200 millis"), Effect.option)
          return yield* Effect.fail({ siblingOpenedMeanwhile: Option.isSome(meanwhile) })
        }))
        const b = sql.withTransaction(Effect.zipRight(Deferred.succeed(siblingOpened, undefined), note("6935:b")))
        const outcomes = yield* sql.withTransaction(
          Effect.zipRight(note("6935:outer"), Effect.all([Effect.flip(a), b], { concurrency: "unbounded" }))
        )
        assert.deepStrictEqual(yield* notes("6935:"), ["6935:b", "6935:outer"])
        assert.deepStrictEqual(outcomes[0], { siblingOpenedMeanwhile: false })
      }))

    it.effect("a nested transaction interrupted while its statement runs rolls back its savepoint only", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const result = yield* sql.withTransaction(Effect.gen(function*() {
          yield* note("interrupt:outer-before")
          const fiber = yield* Effect.fork(sql.withTransaction(
            Effect.zipRight(note("interrupt:inner"), sql`SELECT pg_sleep(30)`)
          ))
          yield* eventuallyActive(url, applicationName, {
            count: 1,
            queryLike: "SELECT pg_sleep(30)",
            within: "5 seconds"
          })
          const exit = yield* Fiber.interrupt(fiber)
          yield* note("interrupt:outer-after")
          return { interrupted: Exit.isInterrupted(exit), seen: yield* notes("interrupt:") }
        }))
        assert.deepStrictEqual(result, {
          interrupted: true,
          seen: ["interrupt:outer-after", "interrupt:outer-before"]
        })
        assert.deepStrictEqual(yield* notes("interrupt:"), ["interrupt:outer-after", "interrupt:outer-before"])
      }))

    it.effect("a fiber that outlives its transaction fails with an SqlError and never runs on the returned connection", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgPool.PgPool
        const go = yield* Deferred.make<void>()
        const leaked = yield* sql.withTransaction(
          Effect.forkDaemon(Effect.zipRight(Deferred.await(go), note("leaked:statement")))
        )
        yield* Deferred.succeed(go, undefined)
        const error = failureOf(yield* Fiber.await(leaked))
        assert.instanceOf(error, SqlError)
        assert.include(error.message, "has ended")
        assert.deepStrictEqual(yield* notes("leaked:"), [])
        assert.strictEqual((yield* pg.stats).inUse, 0)
      }))

    it.effect("a nested transaction still open when its enclosing one ends: the enclosing one rolls back, both fail typed", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const opened = yield* Deferred.make<void>()
        const go = yield* Deferred.make<void>()
        let nested: Fiber.RuntimeFiber<void, SqlError> | undefined
        const outer = yield* sql.withTransaction(Effect.gen(function*() {
          yield* note("open-nested:outer")
          nested = yield* Effect.forkDaemon(sql.withTransaction(Effect.gen(function*() {
            yield* note("open-nested:inner")
            yield* Deferred.succeed(opened, undefined)
            yield* Deferred.await(go)
          })))
          yield* Deferred.await(opened)
        })).pipe(Effect.exit)
        const outerError = failureOf(outer)
        assert.instanceOf(outerError, SqlError)
        assert.include(outerError.message, "nested withTransaction was still open")
        yield* Deferred.succeed(go, undefined)
        const innerError = failureOf(yield* Fiber.await(nested!))
        assert.include(innerError.message, "has ended")
        assert.deepStrictEqual(yield* notes("open-nested:"), [])
      }))
  })
})
