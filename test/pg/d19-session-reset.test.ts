/**
 * D19 (issue 11 item 19): what one borrower does to its session — `SET` without `LOCAL`,
 * `LISTEN`, SQL-level `PREPARE`, `DECLARE … WITH HOLD`, temp tables — never reaches the next.
 * The default (`reset: "auto"`) stays cheap: a clean lease is returned with no statement; a
 * lease whose command tags say it changed the session is reset before reuse. `onConnect`
 * statements run on every new connection and again after a reset that undid them.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { withClient } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const poolOf = (overrides: Partial<PgPool.Options> = {}) =>
  PgPool.make({ url: Redacted.make(url), applicationName, min: 1, max: 1, ...overrides }).pipe(
    Effect.provide(Reactivity.layer)
  )

/** The last statement the backend ran, as another session sees it. */
const lastStatementOf = (pid: number) =>
  Effect.promise(() =>
    withClient(
      url,
      async (client) =>
        (await client.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE pid = $1", [pid])).rows[0]!
          .query
    )
  )

const one = <A>(rows: ReadonlyArray<A>): A => rows[0]!

describe("D19 reset: auto (the default)", () => {
  it.live("SET, LISTEN, PREPARE, DECLARE WITH HOLD and temp tables do not reach the next borrower", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf()
      const sql = pg.sql
      const pid = one(yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`).pid
      const defaults = one(
        yield* sql<{ wm: string; st: string }>`SELECT current_setting('work_mem') AS wm, current_setting(
          'statement_timeout'
        ) AS st`
      )

      yield* sql`SET work_mem = '1234kB'`
      const settings = one(
        yield* sql<{ wm: string; st: string; app: string }>`SELECT current_setting('work_mem') AS wm,
          current_setting('statement_timeout') AS st, current_setting('application_name') AS app`
      )
      // startup parameters survive the reset
      assert.deepStrictEqual(settings, { wm: defaults.wm, st: defaults.st, app: applicationName })

      yield* sql`LISTEN d19_channel`
      assert.deepStrictEqual(yield* sql`SELECT pg_listening_channels() AS c`, [])

      yield* sql`PREPARE d19_plan AS SELECT 1`
      assert.strictEqual(
        one(yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE from_sql`).n,
        0
      )

      yield* sql`DECLARE d19_cursor CURSOR WITH HOLD FOR SELECT 1`
      assert.strictEqual(one(yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_cursors`).n, 0)

      const temps = sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = pg_my_temp_schema()`
      yield* sql`CREATE TEMP TABLE d19_temp (x int)`
      assert.strictEqual(one(yield* temps).n, 0)
      yield* sql`CREATE TEMP TABLE d19_temp_as AS SELECT 1 AS x`
      assert.strictEqual(one(yield* temps).n, 0)

      // the same connection all along: it was reset, not replaced
      assert.strictEqual(one(yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`).pid, pid)
      const stats = yield* pg.stats
      assert.strictEqual(stats.retired["reset-failed"], 0)
    }).pipe(Effect.scoped))

  it.live("a clean lease is returned with no statement run on the server", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf()
      const pid = one(yield* pg.sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`).pid
      yield* pg.sql`SELECT 4242 AS clean`
      assert.strictEqual(yield* lastStatementOf(pid), "SELECT 4242 AS clean")
      yield* pg.use((conn) => conn.query("SELECT 4343 AS raw", []))
      assert.strictEqual(yield* lastStatementOf(pid), "SELECT 4343 AS raw")
      // a SET is followed by its reset
      yield* pg.sql`SET work_mem = '2MB'`
      assert.notStrictEqual(yield* lastStatementOf(pid), "SET work_mem = '2MB'")
    }).pipe(Effect.scoped))

  it.live("session advisory locks are not released by auto (documented): release them, or use reset: always", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf()
      yield* pg.sql`SELECT pg_advisory_lock(1919)`
      const held = one(
        yield* pg.sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'
        AND objid = 1919 AND pid = pg_backend_pid()`
      ).n
      assert.strictEqual(held, 1)
      yield* pg.sql`SELECT pg_advisory_unlock(1919)`
    }).pipe(Effect.scoped))
})

describe("D19 reset: the other modes, and onConnect", () => {
  it.live("always: DISCARD ALL after every lease, advisory locks included", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ reset: "always" })
      const pid = one(yield* pg.sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`).pid
      yield* pg.sql`SELECT 1`
      assert.strictEqual(yield* lastStatementOf(pid), "DISCARD ALL")
      yield* pg.sql`SELECT pg_advisory_lock(1920)`
      const held = one(
        yield* pg.sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'
        AND objid = 1920`
      ).n
      assert.strictEqual(held, 0)
    }).pipe(Effect.scoped))

  it.live("transaction-only: only the transaction is reset (today's behaviour, opt-in)", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ reset: "transaction-only" })
      yield* pg.sql`SET work_mem = '1235kB'`
      assert.strictEqual(one(yield* pg.sql<{ wm: string }>`SELECT current_setting('work_mem') AS wm`).wm, "1235kB")
    }).pipe(Effect.scoped))

  it.live("custom SQL runs after every lease that ran a statement", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ reset: { sql: "RESET work_mem" } })
      const pid = one(yield* pg.sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`).pid
      assert.strictEqual(yield* lastStatementOf(pid), "RESET work_mem")
      yield* pg.sql`SET work_mem = '1236kB'`
      assert.notStrictEqual(one(yield* pg.sql<{ wm: string }>`SELECT current_setting('work_mem') AS wm`).wm, "1236kB")
    }).pipe(Effect.scoped))

  it.live("onConnect: init statements on every connection, applied again after a reset undid them", () =>
    Effect.gen(function*() {
      const pg = yield* poolOf({ onConnect: ["SET search_path TO d19_schema, public"] })
      const path = pg.sql<{ p: string }>`SELECT current_setting('search_path') AS p`
      assert.strictEqual(one(yield* path).p, "d19_schema, public")
      yield* pg.sql`SET search_path TO public`
      assert.strictEqual(one(yield* path).p, "d19_schema, public")
      yield* pg.sql`RESET ALL`
      assert.strictEqual(one(yield* path).p, "d19_schema, public")
    }).pipe(Effect.scoped))

  it.live("a bad onConnect statement fails the connection attempt, typed", () =>
    Effect.gen(function*() {
      // built eagerly, the pool fails at build with the classified connect error
      const error = yield* Effect.flip(poolOf({ onConnect: ["SET no_such_setting_d19 = 1"] }))
      assert.strictEqual(error._tag, "PgConnectError")
      assert.include(error.message, "no_such_setting_d19")
      // built lazily, the first statement fails with it
      const pg = yield* poolOf({ onConnect: ["SET no_such_setting_d19 = 1"], acquireTimeout: "2 seconds", lazy: true })
      const lazyError = yield* Effect.flip(pg.sql`SELECT 1`)
      assert.include(lazyError.message, "no_such_setting_d19")
    }).pipe(Effect.scoped))
})
