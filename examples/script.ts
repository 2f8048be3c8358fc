/**
 * A script: the pool lives in `Effect.scoped` and is closed when the block ends, whatever
 * way it ends (success, failure, interruption).
 *
 *   DATABASE_URL=postgres://… pnpm tsx examples/script.ts
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { NodeRuntime } from "@effect/platform-node"
import { Pool } from "@scoped-pool/core"
import { PgPool, PgPoolConfig } from "@scoped-pool/pg"
import { Console, Effect } from "effect"

const program = Effect.gen(function*() {
  const options = yield* PgPoolConfig.fromEnv
  const pg = yield* PgPool.make({ ...options, max: 3 })
  const sql = pg.sql

  const tables = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_tables`
  yield* Console.log(`tables: ${tables[0]!.n}`)

  // A raw lease: the connection is returned when the function ends.
  const pid = yield* pg.use((conn) => Effect.succeed(conn.processId))
  yield* Console.log(`leased backend pid ${pid}`)

  const stats = yield* Pool.stats(pg.pool)
  yield* Console.log(`pool: size ${stats.size}, requests ${stats.requests}`)
}).pipe(
  Effect.scoped, // the pool closes here
  Effect.provide(Reactivity.layer),
  Effect.tap(() => Console.log("done: pool closed"))
)

NodeRuntime.runMain(program)
