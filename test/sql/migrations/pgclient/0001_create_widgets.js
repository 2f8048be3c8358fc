// Plain JavaScript: `PgMigrator.fromFileSystem` imports migrations with Node's own `import()`,
// which on Node 20 cannot load TypeScript.
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE compat_pgclient_widgets (id integer PRIMARY KEY, name text NOT NULL)`
})
