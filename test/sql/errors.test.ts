import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, layer } from "@effect/vitest"
import { PgError, PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { withLogs } from "../support/faults.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const queryErrorOf = (error: unknown): PgError.PgQueryError => {
  assert.instanceOf(error, SqlError)
  const cause = (error as SqlError).cause
  assert.instanceOf(cause, PgError.PgQueryError)
  return cause as PgError.PgQueryError
}

describe("8. SqlError keeps SQLSTATE, message, detail and hint", () => {
  layer(PgPool.layer({ url: Redacted.make(url), applicationName, max: 2 }), { excludeTestServices: true })((it) => {
    it.effect("division by zero: code 22012 and the server's message", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const cause = queryErrorOf(yield* Effect.flip(sql`SELECT 1/0`))
        assert.strictEqual(cause.code, "22012")
        assert.strictEqual(cause.serverMessage, "division by zero")
      }))

    it.effect("unique violation: detail and constraint", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const cause = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`CREATE TEMP TABLE uniq (id int PRIMARY KEY) ON COMMIT DROP`
          yield* sql`INSERT INTO uniq VALUES (1)`
          return queryErrorOf(yield* Effect.flip(sql`INSERT INTO uniq VALUES (1)`))
        })).pipe(Effect.catchAll((e) => Effect.succeed(queryErrorOf(e))))
        assert.strictEqual(cause.code, "23505")
        assert.strictEqual(cause.detail, "Key (id)=(1) already exists.")
        assert.strictEqual(cause.constraint, "uniq_pkey")
      }))

    it.effect("an unknown function: the server's hint", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const cause = queryErrorOf(yield* Effect.flip(sql`SELECT no_such_fn(${1}::int)`))
        assert.strictEqual(cause.code, "42883")
        assert.include(cause.hint ?? "", "No function matches the given name and argument types")
        assert.include((yield* Effect.flip(sql`SELECT no_such_fn(${1}::int)`)).message, "no_such_fn")
      }))
  })
})

describe("15.6 a server error says where, and the statement is logged at Debug without its parameters", () => {
  layer(PgPool.layer({ url: Redacted.make(url), applicationName, max: 1 }), { excludeTestServices: true })((it) => {
    it.effect("an SqlError from the server carries the position, as character, line and column", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const error = yield* Effect.flip(sql`SELECT 1 AS a,
       no_such_column`)
        const cause = queryErrorOf(error)
        assert.strictEqual(cause.code, "42703")
        assert.strictEqual(cause.position, "23")
        assert.include(error.message, "column \"no_such_column\" does not exist")
        assert.include(error.message, "at character 23 of the statement: line 2, column 8")
      }))

    it.effect("at Debug level the statement text is logged, never its parameter values", () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const error = yield* Effect.flip(sql`SELECT ${"s3cr3t-value"}::text / 0 AS x`)
          assert.strictEqual(queryErrorOf(error).code, "42883")
          const lines = logs.lines.filter((line) => line.annotations.statement !== undefined)
          assert.deepStrictEqual(lines.map((line) => [line.level, line.annotations.statement]), [
            ["DEBUG", "SELECT $1::text / 0 AS x"]
          ])
          assert.strictEqual(lines[0]!.annotations.sqlstate, "42883")
          for (const line of logs.lines) assert.notInclude(JSON.stringify(line), "s3cr3t-value")
        })
      ))
  })
})
