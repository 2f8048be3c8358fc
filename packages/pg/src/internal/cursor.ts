/**
 * A portal as a Stream owned by its scope: opened on acquire (Parse/Bind/Execute with a row
 * limit), fetched a chunk per pull (Execute n + Flush), closed when the scope ends (Close +
 * Sync; a fetch still running is cancelled on the server first, exactly as a statement is).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as PgConnection from "../PgConnection.js"
import type { PgConnectionLost, PgQueryError } from "../PgError.js"
import { toStatementError } from "./statement.js"
import type { Request, WireConnection } from "./wire/connection.js"

/** What a cursor needs from its connection. @internal */
export interface Host {
  readonly id: number
  readonly wire: WireConnection
}

const endOfStream = Effect.fail(Option.none())

const open = (
  host: Host,
  sql: string,
  params: ReadonlyArray<unknown>,
  options: PgConnection.CursorOptions
): Effect.Effect<{ readonly request: Request; ended: boolean }, PgQueryError | PgConnectionLost> =>
  Effect.suspend(() => {
    let failure: PgQueryError | PgConnectionLost | undefined
    const request = host.wire.openPortal(
      sql,
      params,
      options.rowMode === "array",
      options.chunkSize,
      undefined,
      (e) => {
        if (e !== undefined && request === undefined) {
          failure = toStatementError(e, host.id, host.wire.processId) as never
        }
      }
    )
    if (failure !== undefined) {
      return Effect.fail(failure)
    }
    return Effect.succeed({ request, ended: false })
  })

const readChunk = (host: Host, cursor: { readonly request: Request; ended: boolean }) =>
  Effect.async<ReadonlyArray<PgConnection.Row>, Option.Option<PgQueryError | PgConnectionLost>>((resume) => {
    if (cursor.ended) return resume(endOfStream)
    host.wire.fetchPortal(cursor.request, (error, rows, done) => {
      if (error !== undefined) {
        cursor.ended = true
        return resume(Effect.fail(Option.some(toStatementError(error, host.id, host.wire.processId) as never)))
      }
      if (done) cursor.ended = true
      resume(rows.length === 0 ? endOfStream : Effect.succeed(rows))
    })
    // No canceller: an interrupted fetch is ended by the scope's release (the portal's close).
  })

const close = (host: Host, cursor: { readonly request: Request }) =>
  Effect.async<void>((resume) => {
    host.wire.closePortal(cursor.request, () => resume(Effect.void))
  })

/** @internal */
export const stream = (
  host: Host,
  sql: string,
  params: ReadonlyArray<unknown>,
  options: PgConnection.CursorOptions
): Stream.Stream<PgConnection.Row, PgQueryError | PgConnectionLost> => {
  if (!Number.isInteger(options.chunkSize) || options.chunkSize <= 0) {
    return Stream.die(
      new RangeError(`PgConnection.cursor: chunkSize must be a positive integer, got ${options.chunkSize}`)
    )
  }
  return Stream.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(open(host, sql, params, options), (cursor) => close(host, cursor)),
      (cursor) => Stream.flattenIterables(Stream.repeatEffectOption(readChunk(host, cursor)))
    )
  )
}
