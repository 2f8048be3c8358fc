/**
 * Quickstart: open a pool, create a table, insert and read rows, watch a statement timeout
 * being cancelled on the server, print the pool's stats, close.
 *
 * Run with `pnpm demo`. With `DATABASE_URL` (or the libpq `PG*` variables) set it uses that
 * server through `PgPoolLive`; otherwise it starts a throwaway embedded PostgreSQL first, with
 * the test kit's `PgServer` (`npm i -D @scoped-pool/testing`). Only public API is used: copy it.
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgPool, PgPoolLive } from "@scoped-pool/pg"
import { PgServer } from "@scoped-pool/testing"
import { Console, Effect, Layer, Option, Redacted } from "effect"

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const pg = yield* PgPool.PgPool

  yield* sql`CREATE TABLE IF NOT EXISTS quickstart_notes (id serial PRIMARY KEY, body text NOT NULL)`
  yield* sql`INSERT INTO quickstart_notes ${sql.insert([{ body: "hello" }, { body: "scoped world" }])}`
  const rows = yield* sql<{ id: number; body: string }>`SELECT id, body FROM quickstart_notes ORDER BY id`
  yield* Console.log("rows:", rows)
  yield* sql`DROP TABLE quickstart_notes`

  // A statement that outlives its timeout is cancelled on the server, not abandoned.
  const started = Date.now()
  const outcome = yield* sql`SELECT pg_sleep(30)`.pipe(Effect.timeoutOption("300 millis"))
  const [still] = yield* sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'`
  yield* Console.log(
    `timeout: ${Option.isNone(outcome) ? "timed out" : "finished"} after ${Date.now() - started} ms;`,
    `pg_sleep still running on the server: ${still!.n}`
  )

  const stats = yield* pg.stats
  yield* Console.log("pool stats:", {
    size: stats.size,
    idle: stats.idle,
    inUse: stats.inUse,
    requests: stats.requests,
    created: stats.created,
    retired: stats.retired
  })
})

// Uses DATABASE_URL / PG* when set; else a throwaway embedded server for the demo's lifetime.
const usesEnvironment = process.env.DATABASE_URL !== undefined || process.env.PGHOST !== undefined
const DemoPool: Layer.Layer<
  Layer.Layer.Success<typeof PgPoolLive>,
  Layer.Layer.Error<typeof PgPoolLive> | PgServer.PgServerError
> = usesEnvironment ? PgPoolLive : Layer.unwrapScoped(
  Effect.gen(function*() {
    yield* Console.log("no DATABASE_URL: starting an embedded PostgreSQL…")
    const server = yield* PgServer.make({ maxConnections: 20 })
    return PgPool.layer({ url: Redacted.make(server.url), applicationName: "quickstart", max: 4 })
  })
)

program.pipe(
  Effect.provide(DemoPool),
  Effect.tap(() => Console.log("pool closed, server stopped: bye")),
  NodeRuntime.runMain
)
