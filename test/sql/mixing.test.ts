/**
 * Our client mixed with other `@effect/sql` code (issue 13 line 1): `@effect/sql`'s
 * `TransactionConnection` stays the one source of truth for "which transaction is this fiber
 * in", both ways — code that reads it (a resolver, a client built by `SqlClient.make`) runs in
 * a transaction of ours, and our statements run in a transaction that `@effect/sql`'s own
 * `withTransaction` opened, on whatever `Connection` it holds.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as SqlResolver from "@effect/sql/SqlResolver"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { eventuallyActive } from "../support/backends.js"
import { failureOf } from "../support/exits.js"
import { classifyCause, terminateBackends } from "../support/faults.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const table = "mixing_notes"

const Tables = Layer.scopedDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const drop = sql`DROP TABLE IF EXISTS ${sql(table)}`
    yield* drop
    yield* sql`CREATE TABLE ${sql(table)} (id serial PRIMARY KEY, note text NOT NULL)`
    yield* Effect.addFinalizer(() => Effect.orDie(drop))
  }).pipe(Effect.orDie)
)

const Live = Layer.provideMerge(Tables, PgPool.layer({ url: Redacted.make(url), applicationName, max: 3 }))

const txid = (sql: SqlClient.SqlClient) =>
  Effect.map(sql<{ id: string }>`SELECT txid_current()::text AS id`, (rows) => rows[0]!.id)

const notes = (sql: SqlClient.SqlClient, prefix: string) =>
  Effect.map(
    sql<{ note: string }>`SELECT note FROM ${sql(table)} WHERE note LIKE ${prefix + "%"} ORDER BY note`,
    (rows) => rows.map((r) => r.note)
  )

/** A client built by `@effect/sql` itself (`SqlClient.make`), on connections `acquirer` gives. */
const effectSqlClient = (acquirer: Effect.Effect<Connection, SqlError, Scope.Scope>) =>
  SqlClient.make({ acquirer, compiler: PgClient.makeCompiler(), spanAttributes: [] }).pipe(
    Effect.provide(Reactivity.layer)
  )

/** A `Connection` that is not ours: every method forwards to `conn`. */
const foreignConnection = (conn: Connection): Connection => ({
  execute: (sql, params, transformRows) => conn.execute(sql, params, transformRows),
  executeRaw: (sql, params) => conn.executeRaw(sql, params),
  executeStream: (sql, params, transformRows) => conn.executeStream(sql, params, transformRows),
  executeValues: (sql, params) => conn.executeValues(sql, params),
  executeUnprepared: (sql, params, transformRows) => conn.executeUnprepared(sql, params, transformRows)
})

describe("mixing with @effect/sql", () => {
  layer(Live, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.effect("our transaction is @effect/sql's TransactionConnection: its readers, SqlResolver and SqlClient.make run in it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const other = yield* effectSqlClient(sql.reserve)
        const byId = yield* SqlResolver.findById("MixingNoteById", {
          Id: Schema.Number,
          Result: Schema.Struct({ id: Schema.Number, txid: Schema.String }),
          ResultId: (row) => row.id,
          execute: (ids) => sql`SELECT id, txid_current()::text AS txid FROM unnest(${ids}::int[]) AS id`
        })
        const exit = yield* sql.withTransaction(Effect.gen(function*() {
          const ours = yield* txid(sql)
          const [conn, depth] = Option.getOrThrow(yield* Effect.serviceOption(SqlClient.TransactionConnection))
          const [viaTag] = yield* conn.execute("SELECT txid_current()::text AS id", [], undefined)
          const viaOther = yield* txid(other)
          yield* other`INSERT INTO ${other(table)} (note) VALUES ('ours:by-effect-sql')`
          const resolved = yield* Effect.map(byId.execute(7), Option.getOrThrow)
          const nested = yield* sql.withTransaction(
            Effect.zip(
              Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.getOrThrow),
              txid(other)
            )
          )
          yield* Effect.fail({ ours, depth, viaTag: viaTag.id, viaOther, resolved: resolved.txid, nested })
        })).pipe(Effect.exit)
        const seen = failureOf(exit) as {
          ours: string
          depth: number
          viaTag: string
          viaOther: string
          resolved: string
          nested: readonly [readonly [Connection, number], string]
        }
        assert.strictEqual(seen.depth, 0)
        assert.deepStrictEqual([seen.viaTag, seen.viaOther, seen.resolved, seen.nested[1]], [
          seen.ours,
          seen.ours,
          seen.ours,
          seen.ours
        ])
        assert.strictEqual(seen.nested[0][1], 1)
        // @effect/sql's statement rolled back with our transaction.
        assert.deepStrictEqual(yield* notes(sql, "ours:"), [])
      }))

    it.effect("a transaction of @effect/sql's own withTransaction holds our statements and our nested transactions", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        // On connections of ours (sql.reserve), and on connections that are not ours at all.
        for (
          const [name, acquirer] of [
            ["reserved", sql.reserve],
            ["foreign", Effect.map(sql.reserve, foreignConnection)]
          ] as const
        ) {
          const other = yield* effectSqlClient(acquirer)
          const result = yield* other.withTransaction(Effect.gen(function*() {
            const theirs = yield* txid(other)
            const ours = yield* txid(sql)
            yield* sql`INSERT INTO ${sql(table)} (note) VALUES (${`${name}:outer`})`
            const inner = yield* sql.withTransaction(Effect.gen(function*() {
              yield* sql`INSERT INTO ${sql(table)} (note) VALUES (${`${name}:inner`})`
              return yield* Effect.fail("inner failed" as const)
            })).pipe(Effect.flip)
            const kept = yield* sql.withTransaction(
              Effect.zipRight(sql`INSERT INTO ${sql(table)} (note) VALUES (${`${name}:kept`})`, txid(sql))
            )
            return { sameTransaction: theirs === ours && kept === ours, inner }
          }))
          assert.deepStrictEqual(result, { sameTransaction: true, inner: "inner failed" })
          assert.deepStrictEqual(yield* notes(sql, `${name}:`), [`${name}:kept`, `${name}:outer`])

          const failed = yield* other.withTransaction(
            Effect.zipRight(sql`INSERT INTO ${sql(table)} (note) VALUES (${`${name}:rolled-back`})`, Effect.fail("no"))
          ).pipe(Effect.exit)
          assert.isTrue(Exit.isFailure(failed))
          assert.deepStrictEqual(yield* notes(sql, `${name}:rolled`), [])
        }
        assert.strictEqual((yield* Effect.flatMap(PgPool.PgPool, (pg) => pg.stats)).inUse, 0)
      }))

    it.effect("reserve: one connection for the scope, its statements in turn; it refuses statements once the scope ended", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const conn = yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* sql.reserve
          const pids = yield* Effect.all(
            Array.from({ length: 5 }, () => conn.execute("SELECT pg_backend_pid() AS pid", [], undefined)),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(new Set(pids.map((rows) => rows[0].pid)).size, 1)
          return conn
        }))
        const error = yield* Effect.flip(conn.execute("SELECT 1", [], undefined))
        assert.instanceOf(error, SqlError)
        assert.include(error.message, "has ended")
        assert.strictEqual((yield* Effect.flatMap(PgPool.PgPool, (pg) => pg.stats)).inUse, 0)
      }))

    // Last in the file: it terminates every backend of the file's pool.
    it.effect("@effect/sql's own withTransaction over our connections: a killed backend is a typed error, not a defect", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const other = yield* effectSqlClient(sql.reserve)
        const fiber = yield* Effect.fork(other.withTransaction(other`SELECT pg_sleep(30)`))
        yield* eventuallyActive(url, applicationName, {
          count: 1,
          queryLike: "SELECT pg_sleep(30)",
          within: "5 seconds"
        })
        yield* terminateBackends(url, applicationName)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(
          classifyCause((exit as Exit.Failure<unknown, unknown>).cause),
          "SqlError > PgConnectionLost(Terminated)"
        )
        assert.deepStrictEqual(yield* sql`SELECT 1 AS one`, [{ one: 1 }])
      }))
  })
})
