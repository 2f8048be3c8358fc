/**
 * One statement on the wire, and the conversions of its outcome. Shared by the connection
 * and its cursors.
 *
 * @internal
 */
import type * as Deferred from "effect/Deferred"
import type * as Effect from "effect/Effect"
import pg from "pg"
import type Cursor from "pg-cursor"
import type * as PgConnection from "../PgConnection.js"
import { type PgConnectionLost, PgQueryError, type PgQueryTimeout } from "../PgError.js"

/** @internal */
export type Resume = (effect: Effect.Effect<any, PgQueryError | PgConnectionLost | PgQueryTimeout>) => void

/** @internal */
export const QUERY = 0
/** @internal */
export const RAW = 1
/** @internal */
export const CURSOR = 2

/**
 * One statement (or one open cursor) on the wire. Its identity is what a cancel targets: a
 * cancel is only sent while this object is the connection's `statement` and not `done`.
 */
/** @internal */
export class Statement {
  done = false
  called = false
  error: unknown = undefined
  result: unknown = undefined
  waiters: Deferred.Deferred<void> | undefined = undefined
  /** Abort (destroy) instead of cancelling on interrupt: used by `rollbackIfDirty`. */
  abortOnInterrupt = false
  cursor: Cursor | undefined = undefined
  /** A cursor fetch (Execute) is in flight: pg-cursor's own state says "idle" too early. */
  fetching = false
  /** Set when `queryTimeout` fired for this statement. */
  timedOut = false
  constructor(readonly kind: 0 | 1 | 2, public resume: Resume | undefined) {}
}

/** @internal */
export const busyDefect = (id: number) =>
  new Error(
    `PgConnection #${id} is busy: a statement is already in flight. A connection runs one statement at a time; ` +
      "serialise the calls (a pool lease or a transaction does) instead of sharing the connection between fibers"
  )

/** @internal */
export const isDatabaseError = (u: unknown): u is pg.DatabaseError => u instanceof pg.DatabaseError

/** @internal */
export const toQueryError = (error: unknown): PgQueryError => {
  if (isDatabaseError(error)) {
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
  return new PgQueryError({
    code: undefined,
    serverMessage: error instanceof Error ? error.message : String(error),
    cause: error
  })
}

/** @internal */
export const lastResult = (result: unknown): PgConnection.QueryResult =>
  (Array.isArray(result) ? result[result.length - 1] : result) as PgConnection.QueryResult

/** @internal */
export const allResults = (result: unknown): ReadonlyArray<PgConnection.RawQueryResult> =>
  (Array.isArray(result) ? result : [result]) as ReadonlyArray<PgConnection.RawQueryResult>
