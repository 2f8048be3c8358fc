import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { activeCount, eventuallyActive, statesOf } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

describe("S6 interrupted transaction", () => {
  layer(PgPool.layer({ url: Redacted.make(url), applicationName, max: 1 }), {
    timeout: "60 seconds",
    excludeTestServices: true
  })((it) => {
    it.effect("the statement is cancelled, the transaction rolled back, the connection comes back idle", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgPool.PgPool
        yield* sql`CREATE TABLE IF NOT EXISTS s6_rows (id int)`
        yield* sql`TRUNCATE s6_rows`
        const fiber = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO s6_rows VALUES (1)`
          yield* sql`SELECT pg_sleep(60)`
        })))
        yield* eventuallyActive(url, applicationName, {
          count: 1,
          queryLike: "SELECT pg_sleep(60)",
          within: "10 seconds"
        })
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "SELECT pg_sleep(60)")), 0)
        // never "idle in transaction": rolled back and returned, or destroyed
        const states = yield* Effect.promise(() => statesOf(url, applicationName))
        assert.isTrue(states.every((state) => state === "idle"), states.join())
        const [{ n }] = (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM s6_rows`) as [{ n: number }]
        assert.strictEqual(n, 0)
        const stats = yield* pg.stats
        assert.strictEqual(stats.size, 1)
        assert.strictEqual(stats.retired["reset-failed"] + stats.retired.dead, 0)
        yield* sql`DROP TABLE s6_rows`
      }))

    it.effect("a connection returned inside a transaction block is rolled back before reuse (4. return path)", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const sql = yield* SqlClient.SqlClient
        // a raw lease that leaves BEGIN open, and one that leaves a failed transaction
        yield* pg.use((conn) => conn.query("BEGIN", []))
        assert.deepStrictEqual(yield* pg.use((conn) => Effect.succeed(conn.transactionStatus)), "idle")
        yield* pg.use((conn) => Effect.zipRight(conn.query("BEGIN", []), Effect.either(conn.query("SELECT 1/0", []))))
        assert.deepStrictEqual(yield* sql`SELECT 1 AS one`, [{ one: 1 }])
        const states = yield* Effect.promise(() => statesOf(url, applicationName))
        assert.isTrue(states.every((state) => state === "idle"), states.join())
      }))
  })
})
