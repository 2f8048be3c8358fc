/**
 * The outcome of a wire statement as this package's values and errors: a server error becomes
 * a `PgQueryError` (its SQLSTATE and fields kept), a lost connection a `PgConnectionLost`, a
 * client-side timeout a `PgQueryTimeout`; results keep pg's shape.
 *
 * @internal
 */
import type * as PgConnection from "../PgConnection.js"
import { PgConnectionLost, PgQueryError, PgQueryTimeout } from "../PgError.js"
import * as Wire from "./wire/errors.js"

/** @internal */
export type StatementError = PgQueryError | PgConnectionLost | PgQueryTimeout

/** @internal */
export const toQueryError = (error: Wire.ServerError | Wire.ClientError | Error): PgQueryError => {
  if (error instanceof Wire.ServerError) {
    return new PgQueryError({
      code: error.code,
      serverMessage: error.message,
      severity: error.severity,
      detail: error.detail,
      hint: error.hint,
      position: error.position,
      where: error.where,
      schema: error.schema,
      table: error.table,
      column: error.column,
      dataType: error.dataType,
      constraint: error.constraint,
      cause: error
    })
  }
  return new PgQueryError({ code: undefined, serverMessage: error.message, cause: error.cause ?? error })
}

/** @internal */
export const toLost = (error: Wire.ConnectionLost, connectionId: number, processId: number): PgConnectionLost =>
  new PgConnectionLost({
    reason: error.reason,
    connectionId,
    processId,
    code: error.code,
    cause: error.cause
  })

/** @internal */
export const toStatementError = (error: Wire.Outcome, connectionId: number, processId: number): StatementError => {
  if (error instanceof Wire.ConnectionLost) return toLost(error, connectionId, processId)
  if (error instanceof Wire.QueryTimeout) return new PgQueryTimeout({ timeoutMillis: error.timeoutMillis })
  if (error instanceof Wire.NotSent) {
    // Cancelled before it was written: it never ran, as a statement the server cancelled.
    return new PgQueryError({ code: "57014", serverMessage: "the statement was cancelled before it was sent" })
  }
  return toQueryError(error)
}

const empty: PgConnection.RawQueryResult = { rows: [], rowCount: null, command: "", fields: [] }

/** The last statement's result of a (multi-statement) query. @internal */
export const lastResult = (results: ReadonlyArray<PgConnection.RawQueryResult>): PgConnection.QueryResult =>
  results.length === 0 ? empty : results[results.length - 1]!

/** @internal */
export const allResults = (
  results: ReadonlyArray<PgConnection.RawQueryResult>
): ReadonlyArray<PgConnection.RawQueryResult> => results.length === 0 ? [empty] : results
