// A TypeScript user of the packed packages, compiled by tsc under the strictest common flags
// (see tsconfig.json: skipLibCheck false, so our .d.ts files are checked too) and run with node.
import { SqlClient } from "@effect/sql"
import { Pool, PoolError } from "@scoped-pool/core"
import { isPoolError, PgError, PgPool } from "@scoped-pool/pg"
import { Console, Effect, Either, Redacted } from "effect"

interface Answer {
  readonly answer: number
}

const options: PgPool.Options = {
  url: Redacted.make(process.env["DATABASE_URL"] ?? "postgres://localhost/postgres"),
  max: 2,
  acquireTimeout: "2 seconds",
  applicationName: "packaging-ts"
}

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const pg = yield* PgPool.PgPool
  const rows = yield* sql<Answer>`SELECT ${20}::int + 22 AS answer`
  const failed = yield* Effect.either(sql`SELECT * FROM no_such_table`)
  const code = Either.isLeft(failed) && failed.left.cause instanceof PgError.PgQueryError
    ? failed.left.cause.code
    : "none"
  const stats = yield* Pool.stats(pg.pool)
  yield* Console.log(
    `ts: answer ${rows[0]!.answer}, missing table ${code}, pool size ${stats.size},`,
    `isPoolError ${isPoolError(new PoolError.PoolClosed({ pool: pg.name }))}`
  )
})

Effect.runPromise(program.pipe(Effect.provide(PgPool.layer(options)))).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
