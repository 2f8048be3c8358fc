/**
 * The `SqlError`s of the statement path: what a pool, a connection or the server reported,
 * wrapped for `SqlClient` users (the original is the `cause`), and the errors of the
 * transaction rules. Pure: no Effect services.
 *
 * @internal
 */
import { SqlError } from "@effect/sql/SqlError"
import { PgQueryError } from "../../PgError.js"

/**
 * Where the server's 1-based character `position` falls in `sql`, as line and column.
 *
 * @internal
 */
export const lineAndColumn = (sql: string, position: number): { readonly line: number; readonly column: number } => {
  let line = 1
  let lineStart = 0
  const end = Math.min(position - 1, sql.length)
  for (let i = 0; i < end; i++) {
    if (sql.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: position - lineStart }
}

/**
 * An `SqlError` printed without a stack trace, like the errors it wraps: every one of this
 * path is an expected failure, and its stack would point into the pool, never at the caller.
 */
const sqlError = (args: ConstructorParameters<typeof SqlError>[0]): SqlError => {
  const error = new SqlError(args)
  Object.defineProperty(error, "stack", {
    configurable: true,
    get(this: Error) {
      return `${this.name}: ${this.message}`
    }
  })
  return error
}

const positionOf = (error: PgQueryError, sql: string | undefined): string => {
  const position = error.position === undefined ? NaN : Number(error.position)
  if (!(position >= 1)) return ""
  if (sql === undefined) return ` (at character ${position} of the statement)`
  const { column, line } = lineAndColumn(sql, position)
  return ` (at character ${position} of the statement: line ${line}, column ${column})`
}

/**
 * `error` as an `SqlError` whose `cause` it is; a server error's message says where in the
 * statement (`sql`) the server found the problem. The statement itself is not in the message
 * (it is logged at Debug level, see `Executor`).
 *
 * @internal
 */
export const toSqlError = (error: unknown, sql?: string): SqlError => {
  if (error instanceof SqlError) return error
  if (error instanceof PgQueryError) {
    return sqlError({ cause: error, message: error.message + positionOf(error, sql) })
  }
  return sqlError({ cause: error, message: error instanceof Error ? error.message : "Failed to execute statement" })
}

/**
 * A stream holds the transaction's connection and another statement or stream was asked for:
 * it fails at once rather than wait for a stream that the same fiber may be consuming.
 *
 * @internal
 */
export const streamBusy = (): SqlError =>
  sqlError({
    message: "a stream is open on this transaction's connection; consume it or end its scope before running " +
      "another statement or stream in the same transaction"
  })

/**
 * A statement asked for a transaction's (or a reserved connection's) connection after that
 * transaction ended: it ran in a fiber that outlived its `withTransaction`.
 *
 * @internal
 */
export const ended = (): SqlError =>
  sqlError({
    message: "the transaction (or reserved connection) this statement belongs to has ended: it ran in a fiber " +
      "that outlived its withTransaction; join the fibers you fork inside a transaction, or run the statement outside it"
  })

/**
 * A transaction ended while a nested `withTransaction` inside it (in a fiber that it did not
 * join) was still open: the enclosing transaction is rolled back rather than commit half of
 * the nested one.
 *
 * @internal
 */
export const nestedStillOpen = (): SqlError =>
  sqlError({
    message: "a nested withTransaction was still open when its enclosing transaction ended, so the enclosing one was " +
      "rolled back; join the fibers you fork inside withTransaction before it returns"
  })

/**
 * A statement or stream of a transaction waited `millis` for its turn on the transaction's
 * connection: a sibling fiber's nested transaction or open stream held it all along — most
 * likely waiting for this very statement.
 *
 * @internal
 */
export const turnTimeout = (millis: number): SqlError =>
  sqlError({
    message: `waited ${millis} ms for this transaction's connection: a sibling fiber's nested withTransaction or ` +
      "open stream held it all along. While a nested transaction is open, the statements of its siblings wait for " +
      "it to end: do not make it wait for them (or raise acquireTimeout if it is only slow)"
  })
