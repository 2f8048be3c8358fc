import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

describe("prepare: true", () => {
  layer(PgPool.layer({ url: Redacted.make(url), applicationName, max: 1, prepare: true }), {
    excludeTestServices: true
  })((it) => {
    it.effect("statements are prepared once per connection and reused", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        for (let i = 0; i < 3; i++) yield* sql`SELECT ${i}::int AS prepared_probe`
        const [row] = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE '%prepared_probe%'`
        assert.strictEqual(row!.n, 1)
      }))

    it.effect("a schema change that alters a prepared result: outside a transaction, re-prepared and re-run at once", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgPool.PgPool
        yield* sql`CREATE TABLE IF NOT EXISTS prepared_t (id int PRIMARY KEY, name text)`
        yield* sql`INSERT INTO prepared_t VALUES (1, 'one') ON CONFLICT DO NOTHING`
        yield* sql`SELECT * FROM prepared_t WHERE id = ${1}`
        yield* sql`ALTER TABLE prepared_t ADD COLUMN extra int`
        // the stale plan (0A000) is prepared again and the statement re-run: the caller sees the new columns
        assert.deepStrictEqual(yield* sql`SELECT * FROM prepared_t WHERE id = ${1}`, [{
          id: 1,
          name: "one",
          extra: null
        }])
        assert.strictEqual((yield* pg.stats).retired.invalidated, 0)
        yield* sql`DROP TABLE prepared_t`
      }))

    it.effect("D9 a stale plan (0A000) inside withTransaction retires that connection too; the next transaction works", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgPool.PgPool
        yield* sql`CREATE TABLE IF NOT EXISTS d9_prepared (id int PRIMARY KEY, name text)`
        yield* sql`INSERT INTO d9_prepared VALUES (1, 'one') ON CONFLICT DO NOTHING`
        const select = sql.withTransaction(sql`SELECT * FROM d9_prepared WHERE id = ${1}`)
        assert.deepStrictEqual(yield* select, [{ id: 1, name: "one" }])
        const retiredBefore = (yield* pg.stats).retired.invalidated
        yield* sql`ALTER TABLE d9_prepared ADD COLUMN extra int`
        const error = yield* Effect.flip(select)
        assert.instanceOf(error, SqlError)
        assert.strictEqual((error.cause as { code?: string }).code, "0A000")
        // The one connection (max 1) was retired with its stale plan: the next transactions work.
        assert.deepStrictEqual(yield* select, [{ id: 1, name: "one", extra: null }])
        assert.deepStrictEqual(yield* select, [{ id: 1, name: "one", extra: null }])
        assert.strictEqual((yield* pg.stats).retired.invalidated, retiredBefore + 1)
        yield* sql`DROP TABLE d9_prepared`
      }))

    it.effect("inside a transaction the stale plan fails typed (0A000), the statement is evicted, the next transaction works", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS prepared_tx (id int PRIMARY KEY, name text)`
        yield* sql`INSERT INTO prepared_tx VALUES (1, 'one') ON CONFLICT DO NOTHING`
        yield* sql`SELECT * FROM prepared_tx WHERE id = ${1}`
        yield* sql`ALTER TABLE prepared_tx ADD COLUMN extra int`
        const error = yield* Effect.flip(sql.withTransaction(sql`SELECT * FROM prepared_tx WHERE id = ${1}`))
        assert.instanceOf(error, SqlError)
        assert.strictEqual((error.cause as { code?: string }).code, "0A000")
        const again = yield* sql.withTransaction(sql`SELECT * FROM prepared_tx WHERE id = ${1}`)
        assert.deepStrictEqual(again, [{ id: 1, name: "one", extra: null }])
        yield* sql`DROP TABLE prepared_tx`
      }))

    it.effect("DISCARD ALL by a borrower: the cache forgets its statements, the next run prepares again", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`SELECT ${1}::int AS discard_probe`
        yield* sql`DISCARD ALL`
        assert.deepStrictEqual(yield* sql`SELECT ${2}::int AS discard_probe`, [{ discard_probe: 2 }])
      }))
  })
})
