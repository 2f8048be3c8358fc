/**
 * What the test kit costs at startup, on this machine, through the kit's own code paths:
 *
 * 1. first database ready: an embedded server started and the template seeded (PgTestSetup.start);
 * 2. per test file: `PgTest.layer()` built (a database copied from the template, its pool's first
 *    statement answered) and released (pool closed, leftover check, database dropped), against the
 *    same on a shared database (`PgPool.layer` on the seeded database itself, no copy, no check);
 * 3. per test: a test body (an INSERT and a SELECT) inside `PgTest.rollback`, against the same body
 *    on the shared database without isolation.
 *
 *   pnpm --filter @scoped-pool/testing exec tsx bench/startup.ts
 *
 * Medians of `RUNS` (default 9) rounds for 1 and 2, of 200 tests for 3.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Database from "../src/internal/database.js"
import * as PgServer from "../src/PgServer.js"
import * as PgTest from "../src/PgTest.js"
import * as PgTestSetup from "../src/PgTestSetup.js"

const runs = Number(process.env.RUNS ?? 9)
const tests = 200

/** A realistic small schema: 10 tables with a primary key, an index and 1,000 rows each. */
const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (let t = 0; t < 10; t++) {
    const table = `items_${t}`
    yield* sql`CREATE TABLE ${
      sql(table)
    } (id serial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now())`
    yield* sql`CREATE INDEX ${sql(`${table}_name`)} ON ${sql(table)} (name)`
    yield* sql`INSERT INTO ${sql(table)} (name) SELECT 'item ' || g FROM generate_series(1, 1000) AS g`
  }
})

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const ms = (x: number) => `${x.toFixed(1)} ms`
const time = async <A>(f: () => Promise<A>): Promise<[number, A]> => {
  const start = performance.now()
  const a = await f()
  return [performance.now() - start, a]
}

// 1. first database ready
const serverOnly: Array<number> = []
for (let i = 0; i < Math.min(runs, 3); i++) {
  const [t, server] = await time(() => PgServer.start())
  serverOnly.push(t)
  await server.stop()
}
const [firstReady, handle] = await time(() => PgTestSetup.start({ seed }))
process.env.TEST_DATABASE_URL = handle.url
process.env.TEST_DATABASE_TEMPLATE = handle.template!

const firstQuery = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`)

// 2. per test file
const perFile = (layer: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  Effect.gen(function*() {
    const build: Array<number> = []
    const release: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const scope = yield* Scope.make()
      const start = performance.now()
      const context = yield* Layer.buildWithScope(layer, scope)
      yield* Effect.provide(firstQuery, context)
      const built = performance.now()
      yield* Scope.close(scope, Exit.void)
      build.push(built - start)
      release.push(performance.now() - built)
    }
    return { build: median(build), release: median(release) }
  })

const sharedUrl = Redacted.make(Database.withDatabase(handle.url, handle.template!))
const fileDb = await Effect.runPromise(perFile(PgTest.layer({ applicationName: "bench-file" })))
const sharedDb = await Effect.runPromise(perFile(PgPool.layer({ url: sharedUrl, applicationName: "bench-shared" })))

// 3. per test
const body = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO items_0 (name) VALUES (${"test"})`
  yield* sql`SELECT count(*) FROM items_0`
})
const perTest = (
  wrap: (self: typeof body) => Effect.Effect<void, unknown, SqlClient.SqlClient>,
  layer: Layer.Layer<SqlClient.SqlClient, unknown>
) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = 0; i < tests; i++) {
      const start = performance.now()
      yield* wrap(body)
      times.push(performance.now() - start)
    }
    return median(times)
  }).pipe(Effect.provide(layer))

const rolledBack = await Effect.runPromise(
  perTest(PgTest.rollback, PgTest.layer({ applicationName: "bench-rollback" }))
)
const shared = await Effect.runPromise(
  perTest((self) => self, PgPool.layer({ url: sharedUrl, applicationName: "bench-plain" }))
)
await handle.stop()

const fileOf20 = (perFile: { build: number; release: number }, perTest: number) =>
  perFile.build + perFile.release + 20 * perTest
process.stdout.write(`
| step | kit (PgTest.layer + PgTest.rollback) | shared database, no isolation |
|---|---:|---:|
| first database ready: embedded server started (initdb + postgres) | ${ms(median(serverOnly))} | same |
| first database ready: server started + template seeded once (10 tables × 1,000 rows) | ${
  ms(firstReady)
} | same (migrations once) |
| per test file: database copied from the template + the pool's first statement | ${ms(fileDb.build)} | ${
  ms(sharedDb.build)
} (pool only) |
| per test file: pool closed + leftover check + database dropped | ${ms(fileDb.release)} | ${
  ms(sharedDb.release)
} (pool only) |
| per test: an INSERT and a SELECT (median of ${tests}) | ${ms(rolledBack)} | ${ms(shared)} |
| a file of 20 such tests, setup to teardown | ${ms(fileOf20(fileDb, rolledBack))} | ${ms(fileOf20(sharedDb, shared))} |
`)
