/**
 * The five ways `@effect/sql` runs a statement (`execute`, `withoutTransform`, `raw`, `values`,
 * `unprepared`) as data, so that one path runs them all: each says how its text is compiled,
 * which `PgConnection` call runs it, how the result becomes `@effect/sql`'s value, and which
 * `Connection` method runs it on a connection that is not ours. Plus how a statement ends: its
 * span, its error as an `SqlError`, and the retirement of a connection whose prepared plan went
 * stale.
 *
 * @internal
 */
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Pool from "@scoped-pool/core/Pool"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as PgConnection from "../../PgConnection.js"
import type { PgConnectError, PgConnectionLost, PgQueryTimeout } from "../../PgError.js"
import { PgQueryError } from "../../PgError.js"
import { toSqlError } from "./errors.js"
import * as Span from "./span.js"

/** @internal */
export type Transform = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** @internal */
export type QueryError = PgQueryError | PgConnectionLost | PgQueryTimeout

/** What the statement path needs of its client: shared by every statement, built once. @internal */
export interface Core {
  readonly pool: Pool.Pool<PgConnection.PgConnection, PgConnectError>
  /** Prepare statements with parameters under a cached name (`prepare: true`). */
  readonly prepare: boolean
  /** Single statements outside a transaction may be pipelined on a busy connection (`Pool.useShared`). */
  readonly pipeline: boolean
  /** Rows per cursor round trip of a stream. */
  readonly streamChunkSize: number
  /** Bound on a wait for one's turn on a transaction's connection, in ms (the pool's `acquireTimeout`). */
  readonly turnTimeout: number
  readonly compiler: Statement.Compiler
  readonly spanAttributes: Span.Attributes
  readonly transformRows: Transform
  /** This client's statement constructor, handed to a `Statement.Transformer`. */
  readonly sql: () => Statement.Constructor
}

// Statement names for the prepared-statement cache, shared by every connection: a name always
// stands for the same text, so a connection that has prepared it reuses it. Bounded: past the
// limit, new statements run unnamed.
const names = new Map<string, string>()
const maxNames = 2_000
const nameFor = (sql: string): string | undefined => {
  let name = names.get(sql)
  if (name === undefined && names.size < maxNames) {
    name = `sp_${names.size.toString(36)}`
    names.set(sql, name)
  }
  return name
}

const arrayRows = { rowMode: "array" } as const

// Only statements with parameters are prepared: a parameterless text may hold several statements.
const optionsOf = (prepare: boolean, sql: string, params: ReadonlyArray<unknown>, rowMode?: "array") => {
  const name = prepare && params.length > 0 ? nameFor(sql) : undefined
  return name === undefined ? (rowMode ? arrayRows : undefined) : rowMode ? { name, rowMode } : { name }
}

type Results = ReadonlyArray<PgConnection.RawQueryResult>

const rowsOf = (results: Results): ReadonlyArray<any> =>
  results.length === 1 ? results[0]!.rows : results.map((r) => r.rows)

const rawOf = (results: Results): unknown => results.length === 1 ? results[0] : results

/** One way to run a statement. @internal */
export interface Operation {
  /** `db.operation.name`, as `@effect/sql` names it. */
  readonly name: string
  /** Compile without the query-name transform. */
  readonly withoutTransform: boolean
  readonly query: (
    conn: PgConnection.PgConnection,
    sql: string,
    params: ReadonlyArray<unknown>,
    prepare: boolean
  ) => Effect.Effect<any, QueryError>
  readonly result: (value: any, transformRows: Transform) => unknown
  /** The same on an `@effect/sql` `Connection` that is not ours. */
  readonly foreign: (
    conn: Connection,
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: Transform
  ) => Effect.Effect<unknown, SqlError>
}

const queryRaw = (conn: PgConnection.PgConnection, sql: string, params: ReadonlyArray<unknown>, prepare: boolean) =>
  conn.queryRaw(sql, params, optionsOf(prepare, sql, params))

const transformed = (results: Results, transformRows: Transform) =>
  transformRows === undefined ? rowsOf(results) : transformRows(rowsOf(results))

/** A statement as an Effect (`yield* sql\`…\``). @internal */
export const execute: Operation = {
  name: "execute",
  withoutTransform: false,
  query: queryRaw,
  result: transformed,
  foreign: (conn, sql, params, transformRows) => conn.execute(sql, params, transformRows)
}

/** `.withoutTransform`. @internal */
export const withoutTransform: Operation = {
  name: "executeWithoutTransform",
  withoutTransform: true,
  query: queryRaw,
  result: rowsOf,
  foreign: (conn, sql, params) => conn.execute(sql, params, undefined)
}

/** `.raw`: the connection's own result. @internal */
export const raw: Operation = {
  name: "executeRaw",
  withoutTransform: true,
  query: queryRaw,
  result: rawOf,
  foreign: (conn, sql, params) => conn.executeRaw(sql, params)
}

/** `.values`: rows as arrays. @internal */
export const values: Operation = {
  name: "executeValues",
  withoutTransform: false,
  query: (conn, sql, params, prepare) => conn.query(sql, params, optionsOf(prepare, sql, params, "array")),
  result: (result: PgConnection.QueryResult) => result.rows,
  foreign: (conn, sql, params) => conn.executeValues(sql, params)
}

/** `.unprepared`: never under a prepared name. @internal */
export const unprepared: Operation = {
  name: "executeUnprepared",
  withoutTransform: false,
  query: (conn, sql, params) => conn.queryRaw(sql, params),
  result: transformed,
  foreign: (conn, sql, params, transformRows) => conn.executeUnprepared(sql, params, transformRows)
}

/** A schema change made a prepared statement's plan stale (0A000). @internal */
export const isStalePlan = (error: unknown): boolean => error instanceof PgQueryError && error.code === "0A000"

/**
 * A statement that failed: its span ends with the failure as `SqlError`, a server error is
 * logged at Debug level with the statement text (never its parameters), and with `prepare` a
 * stale plan retires `conn` (when the lease ends) so that it fails at most once per connection.
 *
 * @internal
 */
export const failed = (
  core: Core,
  cause: Cause.Cause<unknown>,
  sql: string,
  span: Span.Started | undefined,
  conn: PgConnection.PgConnection | undefined
): Effect.Effect<never, SqlError> => {
  const mapped = Cause.map(cause, (error) => toSqlError(error, sql))
  Span.end(span, Exit.failCause(mapped))
  const failure = Cause.failureOption(cause)
  const error = failure._tag === "Some" ? failure.value : undefined
  if (!(error instanceof PgQueryError) || error.code === undefined) return Effect.failCause(mapped)
  let result: Effect.Effect<never, SqlError> = Effect.zipRight(
    Effect.logDebug(`the server rejected a statement: ${error.serverMessage}`).pipe(
      Effect.annotateLogs({ sqlstate: error.code, position: error.position ?? "", statement: sql })
    ),
    Effect.failCause(mapped)
  )
  if (core.prepare && conn !== undefined && isStalePlan(error)) {
    result = Effect.zipRight(Pool.invalidate(core.pool, conn), result)
  }
  return result
}

/**
 * A statement that succeeded: `value` is the connection's result, which becomes
 * `@effect/sql`'s; the span ends.
 *
 * @internal
 */
export const succeeded = (
  operation: Operation,
  value: unknown,
  transformRows: Transform,
  span: Span.Started | undefined
): Effect.Effect<unknown> => {
  const result = operation.result(value, transformRows)
  if (span !== undefined) Span.end(span, Exit.succeed(result))
  return Effect.succeed(result)
}
