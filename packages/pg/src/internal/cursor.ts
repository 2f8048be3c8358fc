/**
 * A pg-cursor portal as a Stream owned by its scope: opened on acquire, fetched a chunk per
 * pull, closed (and cancelled on the server if a fetch is running) when the scope ends.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type pg from "pg"
import Cursor from "pg-cursor"
import type * as PgConnection from "../PgConnection.js"
import type { PgConnectionLost, PgConnectionLostReason, PgQueryError } from "../PgError.js"
import * as Connect from "./connect.js"
import { isFatal, isFatalSeverity } from "./sqlstate.js"
import { busyDefect, CURSOR, isDatabaseError, Statement, toQueryError } from "./statement.js"

/** What a cursor needs from its connection. @internal */
export interface Host {
  readonly id: number
  readonly alive: boolean
  readonly client: pg.Client
  statement: Statement | undefined
  lost: PgConnectionLost | undefined
  lostError(): PgConnectionLost
  markDead(reason: PgConnectionLostReason, code: string | undefined, cause: unknown): void
  stopStatement(statement: Statement): Effect.Effect<"confirmed" | "unconfirmed">
}

const endOfStream = Effect.fail(Option.none())

const open = (
  host: Host,
  sql: string,
  params: ReadonlyArray<unknown>,
  options: PgConnection.CursorOptions
): Effect.Effect<Statement, PgConnectionLost> =>
  Effect.suspend(() => {
    if (!host.alive) return Effect.fail(host.lostError())
    if (host.statement !== undefined) return Effect.die(busyDefect(host.id))
    const statement = new Statement(CURSOR, undefined)
    const cursor = new Cursor(sql, params as Array<unknown>, options.rowMode === "array" ? { rowMode: "array" } : {})
    statement.cursor = cursor
    host.statement = statement
    // In flight, the socket keeps the process alive; the connection unrefs it when idle again.
    Connect.setSocketRef(host.client, true)
    host.client.query(cursor)
    return Effect.succeed(statement)
  })

const readChunk = (host: Host, statement: Statement, chunkSize: number) =>
  Effect.async<ReadonlyArray<PgConnection.Row>, Option.Option<PgQueryError | PgConnectionLost>>((resume) => {
    if (!host.alive) return resume(Effect.fail(Option.some(host.lostError())))
    statement.fetching = true
    statement.cursor!.read(chunkSize, (error, rows) => {
      statement.fetching = false
      if (error) {
        if (isDatabaseError(error) && (isFatal(error.code) || isFatalSeverity(error.severity))) {
          host.markDead("Terminated", error.code, error)
        }
        resume(Effect.fail(Option.some(host.lost ?? toQueryError(error))))
      } else if (rows.length === 0) {
        resume(endOfStream)
      } else {
        resume(Effect.succeed(rows))
      }
    })
    // No canceller: an interrupted fetch is ended by the scope's release (stopStatement).
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
      Effect.acquireRelease(
        open(host, sql, params, options),
        (statement) => Effect.asVoid(host.stopStatement(statement))
      ),
      (statement) => Stream.flattenIterables(Stream.repeatEffectOption(readChunk(host, statement, options.chunkSize)))
    )
  )
}
