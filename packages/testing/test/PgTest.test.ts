import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as PgTest from "../src/PgTest.js"

// The kit's own tests run on this repository's global setup (test/support/globalSetup.ts),
// which is the kit's: the run's server, no seeded template.
describe("PgTest.layer", () => {
  layer(PgTest.layer(), { timeout: "60 seconds" })((it) => {
    it.effect("gives the file a fresh database of its own and provides PgPool, SqlClient and PgClient on it", () =>
      Effect.gen(function*() {
        const database = yield* PgTest.Database
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgClient.PgClient
        const pool = yield* PgPool.PgPool
        const [row] = yield* sql<{ db: string; app: string }>`
          SELECT current_database() AS db, current_setting('application_name') AS app`
        assert.strictEqual(row!.db, database.name)
        assert.match(database.name, /^t_test_pgtest_/)
        assert.strictEqual(row!.app, "test-PgTest")
        assert.strictEqual(database.applicationName, "test-PgTest")
        assert.strictEqual(pool.name, "test-PgTest")
        assert.strictEqual(pg, pool.sql)
        const [tables] = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`
        assert.strictEqual(tables!.n, 0)
      }))

    it.effect("rollback: a test's writes are rolled back, also when it succeeds", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS notes (body text NOT NULL)`
        const inside = yield* PgTest.rollback(
          Effect.gen(function*() {
            yield* sql`INSERT INTO notes ${sql.insert([{ body: "a" }, { body: "b" }])}`
            // A transaction inside becomes a savepoint.
            yield* sql.withTransaction(sql`INSERT INTO notes ${sql.insert({ body: "c" })}`)
            const [row] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM notes`
            return row!.n
          })
        )
        assert.strictEqual(inside, 3)
        const [after] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM notes`
        assert.strictEqual(after!.n, 0)
      }))

    it.effect("rollback: a failing test's error comes out unchanged and its writes are rolled back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS notes (body text NOT NULL)`
        const result = yield* Effect.either(PgTest.rollback(
          Effect.gen(function*() {
            yield* sql`INSERT INTO notes ${sql.insert({ body: "x" })}`
            return yield* Effect.fail("boom" as const)
          })
        ))
        assert.deepStrictEqual(result, Either.left("boom" as const))
        const [after] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM notes`
        assert.strictEqual(after!.n, 0)
      }))

    it.effect("expectNoBackends fails while a pool of the name is open and passes once it closed", () =>
      Effect.gen(function*() {
        const database = yield* PgTest.Database
        const applicationName = `${database.applicationName}-probe`
        const probe = yield* Effect.gen(function*() {
          const pg = yield* poolOf({ url: database.url, applicationName, min: 1, max: 1 })
          yield* pg.sql`SELECT 1`
          return yield* Effect.either(PgTest.expectNoBackends({ applicationName, within: "100 millis" }))
        }).pipe(Effect.scoped)
        assert.isTrue(Either.isLeft(probe))
        assert.strictEqual(Either.isLeft(probe) && probe.left._tag, "PgTestError")
        assert.include(Either.isLeft(probe) ? probe.left.message : "", "still on the server")
        yield* PgTest.expectNoBackends({ applicationName })
      }))
  })
})

describe("PgTest.layer on a test's TestClock", () => {
  layer(PgTest.layer({ applicationName: "test-PgTest-clock", max: 1, acquireTimeout: "300 millis" }), {
    timeout: "60 seconds"
  })((it) => {
    it.effect(
      "the pool runs on the live clock: acquireTimeout fires inside it.effect without TestClock.adjust",
      () =>
        Effect.gen(function*() {
          const pg = yield* PgPool.PgPool
          const sql = yield* SqlClient.SqlClient
          const held = yield* Deferred.make<void>()
          const holder = yield* Effect.fork(
            pg.use(() => Effect.zipRight(Deferred.succeed(held, undefined), Effect.never))
          )
          yield* Deferred.await(held)
          const result = yield* Effect.either(sql`SELECT 1`)
          assert.isTrue(Either.isLeft(result))
          assert.include(Either.isLeft(result) ? String(result.left.cause) : "", "PoolTimeout")
          yield* Fiber.interrupt(holder)
          const [row] = yield* sql<{ one: number }>`SELECT 1 AS one`
          assert.strictEqual(row!.one, 1)
        }),
      { timeout: 10_000 }
    )
  })
})

/** A pool of our own in the current scope. */
const poolOf = (options: PgPool.Options) =>
  Effect.map(Layer.build(PgPool.layer(options)), (context) => Context.get(context, PgPool.PgPool))

describe("PgTest.server", () => {
  layer(PgTest.layer({ applicationName: "test-PgTest-server" }), { timeout: "60 seconds" })((it) => {
    it.effect("a throwaway server answers, stops immediately, restarts, and is gone after its scope", () =>
      Effect.gen(function*() {
        const dataDir = yield* Effect.gen(function*() {
          const server = yield* PgTest.server({ maxConnections: 20 })
          const query = poolOf({ url: Redacted.make(server.url), max: 1, applicationName: "probe" }).pipe(
            Effect.flatMap((pg) => pg.sql<{ one: number }>`SELECT 1 AS one`),
            Effect.scoped
          )
          assert.strictEqual((yield* query)[0]!.one, 1)
          yield* Effect.promise(() => server.pgCtlStop("immediate"))
          yield* Effect.promise(() => server.restart())
          assert.strictEqual((yield* query)[0]!.one, 1)
          return server.dataDir
        }).pipe(Effect.scoped)
        const Fs = yield* Effect.promise(() => import("node:fs"))
        assert.isFalse(Fs.existsSync(dataDir))
      }))
  })
})
