import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE compat_pgclient_widgets ADD COLUMN size integer NOT NULL DEFAULT 1`
  yield* sql`INSERT INTO compat_pgclient_widgets ${sql.insert({ id: 1, name: "sprocket", size: 3 })}`
})
