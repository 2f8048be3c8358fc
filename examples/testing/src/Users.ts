/** The code under test: a tiny repository of users on `@effect/sql`. */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export interface User {
  readonly id: number
  readonly name: string
}

/** The schema, as a migration would create it. */
export const migrate = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL UNIQUE)`
})

export const create = (name: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [user] = yield* sql<User>`INSERT INTO users ${sql.insert({ name })} RETURNING id, name`
    return user!
  })

export const all = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql<User>`SELECT id, name FROM users ORDER BY id`
})
