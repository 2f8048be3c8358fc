/**
 * Databases of a test run, driven through an admin pool of our own (one connection, its own
 * `application_name`, never a pool under test).
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { ProvidedContext } from "../PgTestSetup.js"

/** The key under which the global setup hands its server to the test files. @internal */
export const contextKey = "@scoped-pool/testing" as const

/** What the global setup hands to every test file (serialisable). @internal */
export type SetupContext = ProvidedContext

/** A backend as `pg_stat_activity` shows it. @internal */
export interface Backend {
  readonly pid: number
  readonly state: string | null
  readonly query: string
}

/** `url` with its database replaced by `database`. @internal */
export const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${encodeURIComponent(database)}`
  return parsed.toString()
}

/** A name PostgreSQL accepts without quoting trouble: lowercase letters, digits, `_`, at most 63 bytes. @internal */
export const databaseNameOf = (applicationName: string): string => {
  const base = applicationName.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 40)
  const suffix = `${process.pid.toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  return `t_${base}_${suffix}`.slice(0, 63)
}

/** @internal */
export const createDatabase = (
  sql: SqlClient.SqlClient,
  name: string,
  template: string | null
): Effect.Effect<void, SqlError> =>
  template === null
    ? sql`CREATE DATABASE ${sql(name)}`.pipe(Effect.asVoid)
    : sql`CREATE DATABASE ${sql(name)} TEMPLATE ${sql(template)}`.pipe(Effect.asVoid)

/** Drops `name`, ending any session still on it. @internal */
export const dropDatabase = (sql: SqlClient.SqlClient, name: string): Effect.Effect<void, SqlError> =>
  sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`.pipe(Effect.asVoid)

/** @internal */
export const backendsOf = (
  sql: SqlClient.SqlClient,
  applicationName: string
): Effect.Effect<ReadonlyArray<Backend>, SqlError> =>
  sql<Backend>`
    SELECT pid, state, query FROM pg_stat_activity
    WHERE application_name = ${applicationName} AND pid <> pg_backend_pid()`

/**
 * Reads `backends` every 20 ms until it is empty; after `within`, returns the leftovers. The
 * one poll of the kit: bounded, and over an external system (the server ends a closed
 * session a moment after the client closed its socket).
 *
 * @internal
 */
export const leftoverBackends = <E>(
  backends: Effect.Effect<ReadonlyArray<Backend>, E>,
  within: Duration.DurationInput
): Effect.Effect<ReadonlyArray<Backend>, E> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(within)
    for (;;) {
      const left = yield* backends
      if (left.length === 0 || Date.now() >= deadline) return left
      yield* Effect.sleep("20 millis")
    }
  })
