// A plain JavaScript user of the packed packages: no TypeScript, no loader, just node.
import { SqlClient } from "@effect/sql"
import { Pool } from "@scoped-pool/core"
import { isPoolError, PgPool } from "@scoped-pool/pg"
import * as PgPoolConfig from "@scoped-pool/pg/PgPoolConfig"
import { Console, Effect, Redacted } from "effect"

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const pg = yield* PgPool.PgPool
  const [row] = yield* sql`SELECT ${20}::int + 22 AS answer`
  const stats = yield* Pool.stats(pg.pool)
  yield* Console.log(`mjs: answer ${row.answer}, pool size ${stats.size}, isPoolError ${isPoolError(new Error())}`)
})

const url = process.env.DATABASE_URL
await Effect.runPromise(
  program.pipe(Effect.provide(PgPool.layer({ url: Redacted.make(url), max: 2, applicationName: "packaging-mjs" })))
)

// The internals are not part of the package's API.
const sealed = await import("@scoped-pool/pg/internal/connection").then(() => "importable", (e) => e.code)
if (sealed !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw new Error(`internal modules are ${sealed}`)
console.log(`mjs: internals sealed (${sealed}); defaults ${typeof PgPoolConfig.defaults}`)
