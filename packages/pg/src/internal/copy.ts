/**
 * COPY as a Sink and a Stream over a wire connection (`./wire/connection.ts` holds the states:
 * `copyIn`, `copyOut`, and their transitions). This adapter only turns the wire's callbacks into
 * effects:
 *
 * - `copyFrom`: the COPY is sent when the sink starts; each input chunk is written, from then
 *   on, ahead of the server's CopyInResponse (the sink waits on the socket's drain, and stops
 *   at once when the server has rejected the COPY or its data); at the end of the input, once
 *   the server is in copy-in, CopyDone and the wait for the row count. The scope's finalizer ends a
 *   copy that did not complete — interrupted, or its source failed: CopyFail, then the server's
 *   error and ReadyForQuery (bounded by cancelTimeout, else the connection is destroyed).
 * - `copyTo`: the COPY is sent when the stream starts; each pull takes what was read (the wire
 *   pauses the socket while too much waits, and batches its reads); the finalizer cancels a
 *   copy still running on the server (a CancelRequest, exact as for a statement) and waits for
 *   its end.
 *
 * Both check the statement first (a statement that is not a COPY takes no connection), then run
 * on the connection their `connection` effect gives for the copy's scope, which they must have
 * alone (`acquire` leases one, or takes the transaction's): one scope holds both the connection
 * and the copy.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Pool from "@scoped-pool/core/Pool"
import type { PoolError } from "@scoped-pool/core/PoolError"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import type * as PgConnection from "../PgConnection.js"
import { type PgConnectError, type PgConnectionLost, PgCopyError, type PgCopyErrorReason } from "../PgError.js"
import * as Session from "./sql/session.js"
import { toLost } from "./statement.js"
import { CopyMisuse, type Request, type Result, WireConnection } from "./wire/connection.js"
import { ClientError, ConnectionLost, type Outcome, ServerError } from "./wire/errors.js"

/** What a copy needs from its connection. */
interface Host {
  readonly id: number
  readonly wire: WireConnection
}

/** @internal */
export type CopyError = PgCopyError | PgConnectionLost

/** Copy-out: bytes read and not yet taken before the socket is paused. @internal */
export const defaultHighWaterMark = 1024 * 1024

/** Copy-out: how long reading waits after a read that drained the socket (`CopyToOptions.readBatch`). @internal */
export const defaultReadBatch: Duration.DurationInput = Duration.millis(1)

type Direction = "from" | "to"

/** Leading blanks and comments, then the keyword. */
const COPY_STATEMENT = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*copy\b/i
/** The server's CONTEXT of a COPY error: `COPY t, line 3` (optionally `, column b: "x"`). */
const COPY_LINE = /\bCOPY [^\n]*?, line (\d+)/

const lineOf = (where: string | undefined): number | undefined => {
  if (where === undefined) return undefined
  const match = COPY_LINE.exec(where)
  return match === null ? undefined : Number(match[1])
}

const notCopy = (direction: Direction, sql: string): PgCopyError =>
  new PgCopyError({
    reason: "NotCopy",
    direction,
    code: undefined,
    line: undefined,
    serverMessage: `${direction === "from" ? "copyFrom" : "copyTo"} runs COPY statements only, and "${
      sql.trim().slice(0, 40)
    }" is not one; it was not sent`
  })

/** A wire outcome as a copy's error. */
const toCopyError = (error: Outcome, direction: Direction, host: Host): CopyError => {
  if (error instanceof ConnectionLost) return toLost(error, host.id, host.wire.processId)
  if (error instanceof ServerError) {
    const reason: PgCopyErrorReason = error instanceof CopyMisuse
      ? (error.misuse === "both" ? "Unsupported" : "WrongDirection")
      : "Rejected"
    return new PgCopyError({
      reason,
      direction,
      code: error.code,
      serverMessage: error.message,
      line: lineOf(error.where),
      detail: error.detail,
      hint: error.hint,
      where: error.where,
      schema: error.schema,
      table: error.table,
      column: error.column,
      dataType: error.dataType,
      constraint: error.constraint,
      cause: error
    })
  }
  // A connection that has other statements in flight, or a copy cancelled before it was sent.
  return new PgCopyError({
    reason: error instanceof ClientError ? "ConnectionBusy" : "Rejected",
    direction,
    code: error instanceof ClientError ? undefined : "57014",
    line: undefined,
    serverMessage: error.message
  })
}

const hostOf = (conn: PgConnection.PgConnection): Host | undefined => {
  const host = conn as unknown as Partial<Host>
  return host.wire instanceof WireConnection ? host as Host : undefined
}

/** One COPY statement and how it ended, once it has (its callback ran). */
class Copy {
  request!: Request
  error: Outcome | undefined = undefined
  rowCount = 0
  /** Bytes written since the last turn of the event loop. */
  sinceTurn = 0

  constructor(readonly host: Host, readonly direction: Direction) {}

  readonly settled = (error: Outcome | undefined, results: Array<Result>): void => {
    this.error = error
    this.rowCount = results[results.length - 1]?.rowCount ?? 0
  }

  get done(): boolean {
    return this.request.state === "done"
  }

  /** Resumes once `until` holds, checked again at each change of the copy (no polling). */
  waitFor(until: () => boolean): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      const wire = this.host.wire
      const request = this.request
      const check = () => {
        if (until()) resume(Effect.void)
        else wire.copyWait(request, check)
      }
      check()
      return Effect.sync(() => {
        if (request.copy!.waiter === check) request.copy!.waiter = undefined
      })
    })
  }

  /** The copy's result once done: its row count, or its error. */
  get outcome(): Effect.Effect<number, CopyError> {
    return this.error === undefined
      ? Effect.succeed(this.rowCount)
      : Effect.fail(toCopyError(this.error, this.direction, this.host))
  }

  /**
   * The finalizer: a copy that has not ended is ended — CopyFail in copy-in, else a
   * CancelRequest — and waited for, within cancelTimeout (the wire destroys the connection past
   * it, which settles the copy too).
   */
  get close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.done) return Effect.void
      this.host.wire.cancel(this.request, "interrupt")
      return this.waitFor(() => this.done)
    })
  }
}

/** Sends the COPY; the scope's finalizer ends it if it has not ended by then. */
const open = (
  conn: PgConnection.PgConnection,
  sql: string,
  direction: Direction,
  highWaterMark: number,
  batchMillis: number
): Effect.Effect<Copy, never, Scope.Scope> => {
  const host = hostOf(conn)
  if (host === undefined) return Effect.die(new TypeError(notOurs))
  // Scope.addFinalizer rather than Effect.acquireRelease, which diffs the FiberRefs twice when
  // its finalizer runs: a COPY's last step, on its critical path. Sent and registered in one
  // uninterruptible step, so no COPY is left without its finalizer.
  return Effect.uninterruptible(Effect.flatMap(Effect.scope, (scope) => {
    const copy = new Copy(host, direction)
    copy.request = direction === "from"
      ? host.wire.copyIn(sql, undefined, copy.settled)
      : host.wire.copyOut(sql, highWaterMark, batchMillis, undefined, copy.settled)
    return Effect.as(Scope.addFinalizer(scope, copy.close), copy)
  }))
}

/**
 * Bytes handed to the wire between two turns of the event loop. A socket the kernel drains as
 * fast as we write never asks us to wait for its drain, and a fiber resumes on microtasks: without
 * a turn now and then, the server's answers (an error at line 1) would not be read until the
 * source ends.
 */
const TURN_BYTES = 256 * 1024

/** Resumes after a turn of the event loop (its I/O polled). */
const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * Writes one input chunk, waiting on the socket's drain: `true` once written; `false` as soon as
 * the copy has ended before its data did (its outcome says how: the server rejected it, or the
 * COPY read no data of ours, as `COPY … FROM PROGRAM` does).
 */
const writeChunk = (copy: Copy, chunk: Chunk.Chunk<Uint8Array>): Effect.Effect<boolean> => {
  const wire = copy.host.wire
  const request = copy.request
  const ready = () => wire.copyReady(request)
  const from = (index: number): Effect.Effect<boolean> => {
    for (let i = index; i < chunk.length; i++) {
      const data = Chunk.unsafeGet(chunk, i)
      if (data.length === 0) continue
      if (!wire.copyWrite(request, data)) {
        // Sent, and the socket is full (ready again once drained); or not sent, as the copy has
        // ended (ready once it is done).
        copy.sinceTurn = 0
        return Effect.flatMap(copy.waitFor(ready), () => copy.done ? Effect.succeed(false) : from(i + 1))
      }
      copy.sinceTurn += data.length
      if (copy.sinceTurn >= TURN_BYTES) {
        copy.sinceTurn = 0
        return Effect.flatMap(nextTurn, () => from(i + 1))
      }
    }
    return Effect.succeed(true)
  }
  return Effect.suspend(() => from(0))
}

/**
 * `COPY … FROM STDIN` of the sink's input, on the connection `connection` gives: completes
 * with the row count from the server's CommandComplete.
 *
 * @internal
 */
export const copyFrom = <E>(
  connection: Effect.Effect<PgConnection.PgConnection, E, Scope.Scope>,
  sql: string
): Sink.Sink<number, Uint8Array, never, E | CopyError> => {
  if (!COPY_STATEMENT.test(sql)) return Sink.fail(notCopy("from", sql))
  return Sink.unwrapScoped(Effect.gen(function*() {
    const copy = yield* open(yield* connection, sql, "from", 0, 0)
    const wire = copy.host.wire
    const request = copy.request
    // Until the COPY is written; the data then goes ahead of the server's CopyInResponse (see
    // the wire's copyInWritable). Interruptible, as every wait here: a COPY waiting for a lock
    // is interrupted, and the finalizer cancels it.
    yield* copy.waitFor(() => wire.copyReady(request))
    if (copy.done) {
      // Ended before any data: rejected (its error), or a COPY FROM a server-side file (its rows).
      const rows = yield* copy.outcome
      return Sink.succeed(rows)
    }
    // CopyDone once the server is in copy-in (data may have gone ahead of its response).
    const finish = Effect.flatMap(copy.waitFor(() => wire.copyEndable(request)), () => {
      wire.copyDone(request)
      return Effect.flatMap(copy.waitFor(() => copy.done), () => copy.outcome)
    })
    const loop: Channel.Channel<never, Chunk.Chunk<Uint8Array>, CopyError, never, number, unknown> = Channel
      .readWithCause({
        onInput: (chunk: Chunk.Chunk<Uint8Array>) =>
          Channel.flatMap(
            Channel.fromEffect(writeChunk(copy, chunk)),
            (written) => written ? loop : Channel.fromEffect(copy.outcome)
          ),
        // The source failed (or died): its cause goes on; the finalizer sends CopyFail.
        onFailure: (cause) => Channel.failCause(cause),
        onDone: () => Channel.fromEffect(finish)
      })
    return Sink.fromChannel(loop)
  }))
}

/**
 * `COPY … TO STDOUT` as a stream of byte chunks (whole rows, as the server sent them), on the
 * connection `connection` gives; reading waits `batchMillis` after a read that drained the
 * socket (0: never; see the wire's `afterCopyRead`).
 *
 * @internal
 */
export const copyTo = <E>(
  connection: Effect.Effect<PgConnection.PgConnection, E, Scope.Scope>,
  sql: string,
  highWaterMark: number,
  batchMillis: number
): Stream.Stream<Uint8Array, E | CopyError> => {
  if (!COPY_STATEMENT.test(sql)) return Stream.fail(notCopy("to", sql))
  return Stream.unwrapScoped(Effect.gen(function*() {
    const copy = yield* open(yield* connection, sql, "to", highWaterMark, batchMillis)
    const wire = copy.host.wire
    const ready = () => wire.copyReady(copy.request)
    const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<CopyError>> = Effect.suspend(() => {
      const chunks = wire.copyTake(copy.request)
      if (chunks.length > 0) return Effect.succeed(Chunk.unsafeFromArray<Uint8Array>(chunks))
      if (copy.done) {
        return Effect.fail(
          copy.error === undefined ? Option.none() : Option.some(toCopyError(copy.error, "to", copy.host))
        )
      }
      return Effect.flatMap(copy.waitFor(ready), () => pull)
    })
    return Stream.repeatEffectChunkOption(pull)
  }))
}

const notOurs = "COPY runs on @scoped-pool/pg's own connections (PgPool's copyFrom/copyTo), not on this one"

type TransactionTag = readonly [conn: unknown, depth: number]

/**
 * The connection a copy runs on, for the copy's scope: inside `withTransaction`, the
 * transaction's connection, held as a stream holds it (another statement of the transaction
 * fails at once rather than wait behind the copy); outside, a lease of the pool.
 *
 * @internal
 */
export const acquire = (
  pool: Pool.Pool<PgConnection.PgConnection, PgConnectError>
): Effect.Effect<PgConnection.PgConnection, PgConnectError | PoolError | SqlError, Scope.Scope> =>
  Effect.withFiberRuntime((fiber) => {
    const transaction: TransactionTag | undefined = fiber.currentContext.unsafeMap.get(
      SqlClient.TransactionConnection.key
    )
    if (transaction === undefined) return pool.get
    const level = transaction[0]
    if (!(level instanceof Session.Level)) {
      return Effect.dieMessage(
        "COPY inside a transaction of another SqlClient: run it in a withTransaction of the PgPool that copies"
      )
    }
    const session = level.session
    return Effect.as(
      Effect.acquireRelease(
        Effect.suspend(() => session.take("stream", level) ?? Effect.void),
        () => Effect.sync(() => session.give())
      ),
      session.conn
    )
  })
