/**
 * The connection: a `pg.Client` plus the state that `pg` does not track for us (which
 * statement is in flight, whether the session is still usable) and the cancel/close logic.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type pg from "pg"
import type * as PgConnection from "../PgConnection.js"
import type { PgQueryError } from "../PgError.js"
import { type PgConnectError, PgConnectionLost, type PgConnectionLostReason, PgQueryTimeout } from "../PgError.js"
import { sendCancelRequest } from "./cancel.js"
import * as Connect from "./connect.js"
import * as Cursors from "./cursor.js"
import { isFatal, isFatalSeverity } from "./sqlstate.js"
import {
  allResults,
  busyDefect,
  CURSOR,
  isDatabaseError,
  lastResult,
  QUERY,
  RAW,
  Statement,
  toQueryError
} from "./statement.js"

/** @internal */
export const TypeId: "~@scoped-pool/pg/PgConnection" = "~@scoped-pool/pg/PgConnection" as const

/** @internal */
export const isPgConnection = (u: unknown): u is PgConnection.PgConnection => Predicate.hasProperty(u, TypeId)

// pg 8.23 keeps the BackendKeyData on the client without typing it (`processID`, `secretKey`,
// a signed int32: pg speaks protocol 3.0 only), and `readyForQuery` tells whether it is
// waiting for the server. Read here and nowhere else.
interface ClientInternals {
  readonly processID: number | null
  readonly secretKey: number | null
  readonly readyForQuery?: boolean
}

let nextId = 0

class PgConnectionImpl implements PgConnection.PgConnection {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly id = ++nextId
  processId = 0
  secretKey = 0
  alive = true
  closing = false
  lost: PgConnectionLost | undefined = undefined
  statement: Statement | undefined = undefined
  client!: pg.Client
  private listeners: Set<(notification: PgConnection.Notification) => void> | undefined = undefined
  private closeListeners: Set<(lost: PgConnectionLost | undefined) => void> | undefined = undefined

  readonly queryTimeoutMillis: number | undefined

  constructor(readonly options: Connect.Resolved) {
    this.queryTimeoutMillis = options.queryTimeout === undefined ? undefined : Duration.toMillis(options.queryTimeout)
  }

  get isAlive(): boolean {
    return this.alive
  }

  get busy(): boolean {
    return this.statement !== undefined
  }

  get transactionStatus(): PgConnection.TransactionStatus {
    const status = this.client.getTransactionStatus()
    return status === "T" ? "transaction" : status === "E" ? "failed" : "idle"
  }

  // ---- events from pg (bound once) ----

  readonly onClientError = (error: Error): void => {
    if (this.closing) {
      this.alive = false
      return
    }
    // An ErrorResponse outside a statement (idle_in_transaction_session_timeout, a terminate
    // while idle) is FATAL: the server ends the session after it.
    if (isDatabaseError(error)) this.markDead("Terminated", error.code, error)
    else this.markDead("Closed", undefined, error)
  }

  readonly onClientEnd = (): void => {
    if (this.closing) this.alive = false
    else this.markDead("Closed", undefined, undefined)
  }

  readonly onReadyForQuery = (): void => {
    const statement = this.statement
    if (statement !== undefined && (statement.called || statement.kind === CURSOR)) this.finish(statement)
  }

  readonly onQueryCallback = (error: Error | null | undefined, result: unknown): void => {
    const statement = this.statement
    if (statement === undefined || statement.kind === CURSOR || statement.called) return
    statement.called = true
    if (!error) {
      // pg calls back from inside its ReadyForQuery handler: onReadyForQuery follows.
      statement.result = result
      return
    }
    statement.error = error
    if (!this.alive) return this.finish(statement)
    if (isDatabaseError(error)) {
      if (isFatal(error.code) || isFatalSeverity(error.severity)) {
        this.markDead("Terminated", error.code, error)
      }
      // Otherwise the server's ReadyForQuery follows the ErrorResponse.
      return
    }
    // A client-side error: after a bind failure pg sends Sync and ReadyForQuery follows; after
    // a submit failure nothing is sent and pg marks itself ready once this callback returns.
    queueMicrotask(this.checkReady)
  }

  private readonly checkReady = (): void => {
    const statement = this.statement
    if (
      statement !== undefined && statement.called && !statement.done &&
      (this.client as unknown as ClientInternals).readyForQuery === true
    ) {
      this.finish(statement)
    }
  }

  private readonly onNotificationMessage = (message: pg.Notification): void => {
    if (this.listeners === undefined) return
    const notification: PgConnection.Notification = {
      channel: message.channel,
      payload: message.payload ?? "",
      processId: message.processId
    }
    for (const listener of this.listeners) {
      try {
        listener(notification)
      } catch (error) {
        // Thrown inside pg's socket handler it would crash the process: report it instead.
        Effect.runFork(
          Effect.logError(`PgConnection #${this.id}: a notification listener threw`, Cause.die(error))
        )
      }
    }
  }

  /**
   * One timer per connection bounds its statements (`queryTimeout`): each statement re-arms
   * it with `refresh()` when it starts, so when it fires, the statement in flight (if any) is
   * the one that armed it and has run for `queryTimeout`. It is then cancelled on the server
   * (bounded by `cancelTimeout`) and its caller resumed with `PgQueryTimeout` once the server
   * confirmed, or the connection was destroyed. Unref'd: it never keeps the process alive.
   */
  private deadline: ReturnType<typeof setTimeout> | undefined = undefined

  private armDeadline(): void {
    if (this.queryTimeoutMillis === undefined) return
    if (this.deadline === undefined) {
      this.deadline = setTimeout(this.onDeadline, this.queryTimeoutMillis)
      this.deadline.unref?.()
    } else {
      this.deadline.refresh()
    }
  }

  private readonly onDeadline = (): void => {
    const statement = this.statement
    if (statement === undefined || statement.done || statement.kind === CURSOR || statement.timedOut) return
    statement.timedOut = true
    Effect.runFork(this.stopStatement(statement))
  }

  // ---- state ----

  private finish(statement: Statement): void {
    if (statement.done) return
    statement.done = true
    if (this.statement === statement) {
      this.statement = undefined
      // Idle, the socket must not keep an otherwise finished process alive (S5).
      if (!this.closing) Connect.setSocketRef(this.client, false)
    }
    if (statement.waiters !== undefined) Deferred.unsafeDone(statement.waiters, Exit.void)
    const resume = statement.resume
    if (resume === undefined) return
    statement.resume = undefined
    if (statement.timedOut) {
      resume(Effect.fail(new PgQueryTimeout({ timeoutMillis: this.queryTimeoutMillis! })))
    } else if (statement.error !== undefined) {
      resume(Effect.fail(this.lost ?? toQueryError(statement.error)))
    } else {
      const result = statement.result
      // The rows belong to the caller now: the statement (still referenced by its canceller)
      // must not keep them alive.
      statement.result = undefined
      resume(Effect.succeed(statement.kind === RAW ? allResults(result) : lastResult(result)))
    }
  }

  markDead(reason: PgConnectionLostReason, code: string | undefined, cause: unknown): void {
    if (!this.alive) return
    this.alive = false
    this.lost = new PgConnectionLost({
      reason,
      connectionId: this.id,
      processId: this.processId,
      code,
      cause
    })
    Connect.destroySocket(this.client)
    const statement = this.statement
    if (statement !== undefined) {
      if (statement.error === undefined) statement.error = this.lost
      this.finish(statement)
    }
    this.notifyClosed()
  }

  /** Tells the `onClose` listeners, once: the connection is no longer alive. */
  private notifyClosed(): void {
    const listeners = this.closeListeners
    if (listeners === undefined) return
    this.closeListeners = undefined
    for (const listener of listeners) listener(this.lost)
  }

  readonly onClose = (listener: (lost: PgConnectionLost | undefined) => void): () => void => {
    if (!this.alive) {
      listener(this.lost)
      return () => undefined
    }
    const listeners = this.closeListeners ??= new Set()
    const entry = (lost: PgConnectionLost | undefined) => listener(lost)
    listeners.add(entry)
    return () => {
      listeners.delete(entry)
    }
  }

  lostError(): PgConnectionLost {
    return this.lost ?? new PgConnectionLost({ reason: "Closed", connectionId: this.id, processId: this.processId })
  }

  private awaitDone(statement: Statement): Effect.Effect<void> {
    if (statement.done) return Effect.void
    if (statement.waiters === undefined) statement.waiters = Deferred.unsafeMake<void>(FiberId.none)
    return Deferred.await(statement.waiters)
  }

  /**
   * Ends `statement` on the server: a CancelRequest on a side socket (and, for a cursor, a
   * pipelined Close + Sync), then a wait for its ReadyForQuery and for the server to close the
   * side socket, all within `cancelTimeout`. Past that, the connection is destroyed.
   */
  stopStatement(statement: Statement): Effect.Effect<"confirmed" | "unconfirmed"> {
    return Effect.suspend(() => {
      if (statement.done) return Effect.succeed("confirmed" as const)
      if (!this.alive) return Effect.succeed("unconfirmed" as const)
      if (statement.abortOnInterrupt) {
        this.markDead("CancelUnconfirmed", undefined, undefined)
        return Effect.succeed("unconfirmed" as const)
      }
      let needsCancel = true
      const cursor = statement.cursor
      if (cursor !== undefined) {
        // Between fetches the portal is suspended and the backend waits for us (a cancel would
        // be ignored): closing it is enough. During a fetch, cancel it and close behind it.
        needsCancel = statement.fetching
        cursor.close(() => undefined)
      }
      const done = this.awaitDone(statement)
      const work = needsCancel ? this.cancelUntilDone(statement, done) : Effect.as(done, true)
      return Effect.map(Effect.timeoutOption(work, this.options.cancelTimeout), (outcome) => {
        if (Option.isSome(outcome) && outcome.value && statement.done) return "confirmed" as const
        this.markDead("CancelUnconfirmed", undefined, undefined)
        return "unconfirmed" as const
      })
    })
  }

  /**
   * Sends a CancelRequest, waits for the server to close the side socket (it has signalled the
   * backend by then), then waits a little for the statement to end; repeats while it has not.
   * A cancel that reaches the backend before it has read the statement is ignored by the
   * server, and the repeat covers that race. Ending only after the last side socket closed
   * means no cancel signal is still travelling when the next statement starts. Bounded by the
   * caller's `cancelTimeout`.
   */
  private cancelUntilDone(statement: Statement, done: Effect.Effect<void>): Effect.Effect<boolean> {
    const target = this.cancelTarget()
    const timeout = this.options.cancelTimeout
    const retryAfter = Duration.millis(Math.min(100, Duration.toMillis(timeout) / 4))
    const waitDone = Effect.timeoutOption(done, retryAfter)
    const loop: Effect.Effect<boolean> = Effect.flatMap(sendCancelRequest(target, timeout), (sent) => {
      if (!sent) return Effect.succeed(false)
      if (statement.done) return Effect.succeed(true)
      return Effect.flatMap(waitDone, (finished) => Option.isSome(finished) ? Effect.succeed(true) : loop)
    })
    return loop
  }

  private cancelTarget() {
    return {
      host: this.options.host,
      port: this.options.port,
      ssl: this.options.ssl,
      processId: this.processId,
      secretKey: this.secretKey
    }
  }

  // ---- statements ----

  private run(
    kind: 0 | 1,
    sql: string,
    params: ReadonlyArray<unknown>,
    options: PgConnection.QueryOptions | undefined,
    abortOnInterrupt: boolean
  ): Effect.Effect<any, PgQueryError | PgConnectionLost | PgQueryTimeout> {
    return Effect.async<any, PgQueryError | PgConnectionLost | PgQueryTimeout>((resume) => {
      if (!this.alive) return resume(Effect.fail(this.lostError()))
      if (this.statement !== undefined) return resume(Effect.die(busyDefect(this.id)))
      const statement = new Statement(kind, resume)
      statement.abortOnInterrupt = abortOnInterrupt
      this.statement = statement
      Connect.setSocketRef(this.client, true)
      this.armDeadline()
      if (options === undefined || (options.name === undefined && options.rowMode !== "array")) {
        // The common case, without a config object for pg to clone.
        this.client.query(sql, params as Array<unknown>, this.onQueryCallback)
      } else {
        this.client.query(
          {
            text: sql,
            values: params as Array<unknown>,
            rowMode: options.rowMode === "array" ? "array" : undefined,
            name: options.name
          } as pg.QueryConfig,
          this.onQueryCallback
        )
      }
      // The canceller captures this statement, so an interrupt can only ever cancel it.
      return Effect.suspend(() => {
        statement.resume = undefined
        return Effect.asVoid(this.stopStatement(statement))
      })
    })
  }

  readonly query = (
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: PgConnection.QueryOptions
  ): Effect.Effect<PgConnection.QueryResult, PgQueryError | PgConnectionLost | PgQueryTimeout> =>
    this.run(QUERY, sql, params, options, false)

  readonly queryRaw = (
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: PgConnection.QueryOptions
  ): Effect.Effect<ReadonlyArray<PgConnection.RawQueryResult>, PgQueryError | PgConnectionLost | PgQueryTimeout> =>
    this.run(RAW, sql, params, options, false)

  readonly cancel: Effect.Effect<"confirmed" | "unconfirmed"> = Effect.suspend(() => {
    const statement = this.statement
    return statement === undefined ? Effect.succeed("confirmed" as const) : this.stopStatement(statement)
  })

  readonly rollbackIfDirty: Effect.Effect<boolean> = Effect.suspend(() => {
    const statement = this.statement
    const stopped = statement === undefined ? Effect.void : this.stopStatement(statement)
    return Effect.flatMap(stopped, () => {
      if (!this.alive) return Effect.succeed(false)
      if (this.transactionStatus === "idle") return Effect.succeed(true)
      return this.run(QUERY, "ROLLBACK", [], undefined, true).pipe(
        Effect.timeoutOption(this.options.cancelTimeout),
        Effect.exit,
        Effect.map((exit) => {
          if (Exit.isSuccess(exit) && Option.isSome(exit.value) && this.alive && this.transactionStatus === "idle") {
            return true
          }
          this.markDead("CancelUnconfirmed", undefined, Exit.isFailure(exit) ? exit.cause : undefined)
          return false
        })
      )
    })
  })

  readonly cursor = (
    sql: string,
    params: ReadonlyArray<unknown>,
    options: PgConnection.CursorOptions
  ): Stream.Stream<PgConnection.Row, PgQueryError | PgConnectionLost> => Cursors.stream(this, sql, params, options)

  // ---- notifications ----

  readonly onNotification = (listener: (notification: PgConnection.Notification) => void): () => void => {
    if (this.listeners === undefined) {
      this.listeners = new Set()
      this.client.on("notification", this.onNotificationMessage)
    }
    const listeners = this.listeners
    const entry = (notification: PgConnection.Notification) => listener(notification)
    listeners.add(entry)
    return () => {
      listeners.delete(entry)
    }
  }

  // ---- close ----

  private endClient(): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      this.closing = true
      Connect.setSocketRef(this.client, true)
      this.client.end(() => resume(Effect.void))
    })
  }

  /**
   * The scope's finalizer: bounded at every step, never fails. Under a running statement
   * (a pool force-releasing a busy connection) the close goes on in the background — cancel
   * confirmed or the socket destroyed within `cancelTimeout`, then Terminate within
   * `closeTimeout` — so that closing N busy connections waits on none of them.
   */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    const statement = this.statement
    if (statement !== undefined && this.alive && statement.cursor === undefined) {
      Effect.runFork(this.closeNow)
      return Effect.void
    }
    return this.closeNow
  })

  private readonly closeNow: Effect.Effect<void> = Effect.suspend(() => {
    if (this.deadline !== undefined) clearTimeout(this.deadline)
    const statement = this.statement
    const stopped = statement === undefined ? Effect.void : this.stopStatement(statement)
    return Effect.flatMap(stopped, () => {
      if (!this.alive) {
        this.closing = true
        Connect.destroySocket(this.client)
        this.notifyClosed()
        return Effect.void
      }
      return Effect.timeoutOption(this.endClient(), this.options.closeTimeout).pipe(
        Effect.flatMap((ended) => {
          this.alive = false
          Connect.destroySocket(this.client)
          this.notifyClosed()
          return Option.isSome(ended) ? Effect.void : Effect.logWarning(
            `PgConnection #${this.id} (backend pid ${this.processId}): no close within ${
              Duration.format(this.options.closeTimeout)
            }, socket destroyed`
          )
        })
      )
    })
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.sync(() => Connect.destroySocket(this.client)).pipe(
        Effect.zipRight(Effect.logWarning(`PgConnection #${this.id}: close failed, socket destroyed`, cause))
      )
    )
  )
}

/** @internal */
export const make = (
  options: PgConnection.PgConnectionOptions
): Effect.Effect<PgConnection.PgConnection, PgConnectError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const resolved = yield* Effect.try({ try: () => Connect.resolve(options), catch: (e) => e }).pipe(Effect.orDie)
      const connection = new PgConnectionImpl(resolved)
      connection.client = Connect.makeClient(resolved, connection.onClientError, connection.onClientEnd)
      yield* restore(Connect.connect(connection.client, resolved))
      const keys = connection.client as unknown as ClientInternals
      connection.processId = keys.processID ?? 0
      connection.secretKey = keys.secretKey ?? 0
      // pg's own listeners were attached by connect, so this one runs after them: when it
      // runs, pg has handed the result to the query's callback and updated the status.
      connection.client.connection.on("readyForQuery", connection.onReadyForQuery)
      Connect.setSocketRef(connection.client, false)
      const scope = yield* Effect.scope
      yield* Scope.addFinalizer(scope, connection.close)
      return connection as PgConnection.PgConnection
    })
  )
