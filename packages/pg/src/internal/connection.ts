/**
 * The Effect face of a wire connection (`./wire/connection.ts`, where the state machine lives:
 * it is plain TypeScript so that it can be tested on its own and kept exact). This adapter
 * only turns callbacks into effects: a statement is an `Effect.async` whose canceller asks the
 * wire connection to cancel that very statement and resumes once the cancel has ended; the
 * scope's finalizer is the wire close (cancel, Terminate, socket closed — each bounded). Notices
 * are logged at Debug in the caller's fiber (with its span); what happens outside any
 * statement (a throwing notification listener, a notice while idle) is logged on a fiber of
 * the connection's own FiberSet, with the application's logger, and ends with the connection.
 *
 * @internal
 */
import type { PoolConfigError } from "@scoped-pool/core/PoolError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as PgConnection from "../PgConnection.js"
import type { PgConnectError, PgConnectionLost, PgQueryError, PgQueryTimeout } from "../PgError.js"
import * as Connect from "./connect.js"
import * as Cursors from "./cursor.js"
import { allResults, lastResult, toLost, toQueryError, toStatementError } from "./statement.js"
import { type Notice, type Result, SessionChange, type WireConnection } from "./wire/connection.js"
import type { ConnectionLost } from "./wire/errors.js"

/** @internal */
export const TypeId: "~@scoped-pool/pg/PgConnection" = "~@scoped-pool/pg/PgConnection" as const

/** @internal */
export const isPgConnection = (u: unknown): u is PgConnection.PgConnection => Predicate.hasProperty(u, TypeId)

type StatementError = PgQueryError | PgConnectionLost | PgQueryTimeout

const logNotices = (id: number, notices: ReadonlyArray<Notice>): Effect.Effect<void> =>
  Effect.forEach(
    notices,
    (notice) =>
      Effect.logDebug(`PgConnection #${id}: ${notice.severity ?? "NOTICE"}: ${notice.message}`).pipe(
        Effect.annotateLogs({ sqlstate: notice.code ?? "" })
      ),
    { discard: true }
  )

/** The statements that undo what `changes` says the session changed. */
const resetSqlOf = (changes: number): string => {
  const parts: Array<string> = []
  if (changes & SessionChange.Settings) parts.push("SET SESSION AUTHORIZATION DEFAULT", "RESET ALL")
  if (changes & SessionChange.Listen) parts.push("UNLISTEN *")
  if (changes & SessionChange.Prepared) parts.push("DEALLOCATE ALL")
  if (changes & SessionChange.Cursors) parts.push("CLOSE ALL")
  if (changes & SessionChange.Temp) parts.push("DISCARD TEMP")
  return parts.join("; ")
}

class PgConnectionImpl implements PgConnection.PgConnection {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly id: number
  private listeners: Set<(notification: PgConnection.Notification) => void> | undefined = undefined
  private closeListeners: Set<(lost: PgConnectionLost | undefined) => void> | undefined = undefined
  runFork: (<A, E>(effect: Effect.Effect<A, E>) => unknown) | undefined = undefined

  constructor(readonly wire: WireConnection, readonly options: Connect.Resolved) {
    this.id = wire.id
  }

  get processId(): number {
    return this.wire.processId
  }

  get isAlive(): boolean {
    return this.wire.usable
  }

  get busy(): boolean {
    return this.wire.busy
  }

  get state(): PgConnection.ConnectionState {
    return this.wire.state
  }

  get queueDepth(): number {
    return this.wire.depth
  }

  get headRunningMillis(): number {
    return this.wire.headRunningMillis
  }

  get transactionStatus(): PgConnection.TransactionStatus {
    const status = this.wire.txStatus
    return status === 0x54 ? "transaction" : status === 0x45 ? "failed" : "idle"
  }

  readonly parameter = (name: string): string | undefined => this.wire.parameters.get(name)

  // ---- statements ----

  /** One statement; `abort` destroys the connection if interrupted (used for ROLLBACK). */
  private run<A>(
    sql: string,
    params: ReadonlyArray<unknown>,
    options: PgConnection.QueryOptions | undefined,
    abort: boolean,
    map: (results: ReadonlyArray<PgConnection.RawQueryResult>) => A
  ): Effect.Effect<A, StatementError> {
    const wire = this.wire
    return Effect.async<A, StatementError>((resume) => {
      const prepare = options !== undefined && (options.prepare === true || options.name !== undefined)
      let cancelled: ((effect: Effect.Effect<void>) => void) | undefined
      let interrupted = false
      const request = wire.submit(
        sql,
        params.length === 0 && !prepare ? undefined : params,
        options?.rowMode === "array",
        prepare,
        undefined,
        (error, results, notices) => {
          if (interrupted) {
            cancelled?.(Effect.void)
            return
          }
          const outcome: Effect.Effect<A, StatementError> = error === undefined
            ? Effect.succeed(map(results as Array<Result> as ReadonlyArray<PgConnection.RawQueryResult>))
            : Effect.fail(toStatementError(error, this.id, wire.processId))
          resume(notices === undefined ? outcome : Effect.zipRight(logNotices(this.id, notices), outcome))
        }
      )
      if (request.state === "done") return
      // The canceller targets this statement only, and resumes once its cancel has ended.
      return Effect.async<void>((resumeCancel) => {
        interrupted = true
        if (request.state === "done") return resumeCancel(Effect.void)
        cancelled = resumeCancel
        wire.cancel(request, abort ? "abort" : "interrupt")
      })
    })
  }

  readonly query = (
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: PgConnection.QueryOptions
  ): Effect.Effect<PgConnection.QueryResult, StatementError> => this.run(sql, params, options, false, lastResult)

  readonly queryRaw = (
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: PgConnection.QueryOptions
  ): Effect.Effect<ReadonlyArray<PgConnection.RawQueryResult>, StatementError> =>
    this.run(sql, params, options, false, allResults)

  readonly cursor = (
    sql: string,
    params: ReadonlyArray<unknown>,
    options: PgConnection.CursorOptions
  ): Stream.Stream<PgConnection.Row, PgQueryError | PgConnectionLost> => Cursors.stream(this, sql, params, options)

  /** Cancels everything in flight; resumes once nothing is left (bounded by the wire's cancelTimeout). */
  private readonly cancelAll: Effect.Effect<void> = Effect.async<void>((resume) => {
    this.wire.cancelAll(() => resume(Effect.void))
  })

  readonly cancel: Effect.Effect<"confirmed" | "unconfirmed"> = Effect.map(
    this.cancelAll,
    () => this.wire.state === "dead" || this.wire.state === "closing" ? "unconfirmed" as const : "confirmed" as const
  )

  /** Runs `sql` as a simple query, destroying the connection if it fails, hangs past cancelTimeout or is interrupted. */
  private cleanup(sql: string): Effect.Effect<boolean> {
    return this.run(sql, [], undefined, true, () => true).pipe(
      Effect.timeoutOption(this.options.cancelTimeout),
      Effect.exit,
      Effect.map((exit) => {
        if (exit._tag === "Success" && Option.isSome(exit.value) && this.wire.usable && this.wire.txStatus === 0x49) {
          return true
        }
        this.wire.destroy()
        return false
      })
    )
  }

  readonly rollbackIfDirty: Effect.Effect<boolean> = Effect.suspend(() => {
    const stopped = this.wire.busy ? this.cancelAll : Effect.void
    return Effect.flatMap(stopped, () => {
      if (!this.wire.usable) return Effect.succeed(false)
      if (this.wire.txStatus === 0x49) return Effect.succeed(true)
      return this.cleanup("ROLLBACK")
    })
  })

  readonly resetNeeded = (mode: PgConnection.SessionReset): boolean => {
    const wire = this.wire
    // A dead connection is retired by the pool as such ("dead"): nothing to reset.
    if (!wire.usable) return false
    if (wire.txStatus !== 0x49 || wire.busy) return true
    if (mode === "auto") return wire.sessionChanges !== 0
    if (mode === "transaction-only") return false
    if (mode === "always") return true
    return wire.statementsRun > 0
  }

  readonly reset = (mode: PgConnection.SessionReset): Effect.Effect<boolean> =>
    Effect.flatMap(this.rollbackIfDirty, (clean) => {
      const wire = this.wire
      if (!clean) return Effect.succeed(false)
      const changes = wire.sessionChanges
      let sql: string
      let again: boolean
      if (mode === "transaction-only") {
        sql = ""
        again = false
      } else if (mode === "always") {
        sql = "DISCARD ALL"
        again = true
      } else if (mode === "auto") {
        sql = resetSqlOf(changes)
        again = (changes & SessionChange.Settings) !== 0
      } else {
        sql = wire.statementsRun > 0 ? mode.sql : ""
        again = sql !== ""
      }
      if (sql === "") {
        wire.sessionChanges = 0
        wire.statementsRun = 0
        return Effect.succeed(true)
      }
      if (mode === "always" || (changes & SessionChange.Prepared) !== 0) wire.forgetStatements()
      const init = again && this.options.onConnect.length > 0
        ? this.cleanup(this.options.onConnect.join("; "))
        : undefined
      return Effect.flatMap(this.cleanup(sql), (ok) => {
        if (!ok) return Effect.succeed(false)
        const done = Effect.sync(() => {
          wire.sessionChanges = 0
          wire.statementsRun = 0
          return true
        })
        return init === undefined ? done : Effect.flatMap(init, (ok) => ok ? done : Effect.succeed(false))
      })
    })

  // ---- notifications ----

  readonly onNotification = (listener: (notification: PgConnection.Notification) => void): () => void => {
    const listeners = this.listeners ??= new Set()
    const entry = (notification: PgConnection.Notification) => listener(notification)
    listeners.add(entry)
    return () => {
      listeners.delete(entry)
    }
  }

  readonly dispatch = (channel: string, payload: string, processId: number): void => {
    const listeners = this.listeners
    if (listeners === undefined) return
    const notification: PgConnection.Notification = { channel, payload, processId }
    for (const listener of listeners) {
      try {
        listener(notification)
      } catch (error) {
        this.report(Effect.logError(`PgConnection #${this.id}: a notification listener threw`, Cause.die(error)))
      }
    }
  }

  readonly onClose = (listener: (lost: PgConnectionLost | undefined) => void): () => void => {
    if (this.ended !== undefined) {
      listener(this.ended.lost)
      return () => undefined
    }
    const listeners = this.closeListeners ??= new Set()
    const entry = (lost: PgConnectionLost | undefined) => listener(lost)
    listeners.add(entry)
    return () => {
      listeners.delete(entry)
    }
  }

  /** Set once the wire connection died: why (`undefined` when closed by us). */
  private ended: { readonly lost: PgConnectionLost | undefined } | undefined = undefined

  /** The wire connection died: tells the `onClose` listeners, once. */
  readonly died = (lost: ConnectionLost | undefined): void => {
    const error = lost === undefined ? undefined : toLost(lost, this.id, this.wire.processId)
    this.ended = { lost: error }
    const listeners = this.closeListeners
    if (listeners === undefined) return
    this.closeListeners = undefined
    for (const listener of listeners) {
      try {
        listener(error)
      } catch (cause) {
        this.report(Effect.logError(`PgConnection #${this.id}: a close listener threw`, Cause.die(cause)))
      }
    }
  }

  /** Runs `effect` on the connection's supervised fibers (ended with the connection). */
  report(effect: Effect.Effect<void>): void {
    this.runFork?.(effect)
  }

  // ---- close ----

  /** The scope's finalizer: the wire close, bounded at every step (cancel, Terminate, socket). */
  readonly close: Effect.Effect<void> = Effect.async<void>((resume) => {
    this.wire.close(() => resume(Effect.void))
  })
}

/** @internal */
export const make = (
  options: PgConnection.PgConnectionOptions
): Effect.Effect<PgConnection.PgConnection, PgConnectError | PoolConfigError, Scope.Scope> =>
  Effect.flatMap(Connect.resolve(options), connect)

/** Connects with options already resolved (a pool resolves them once, when it is built). @internal */
export const connect = (
  resolved: Connect.Resolved
): Effect.Effect<PgConnection.PgConnection, PgConnectError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      // The hooks reach the connection once it exists (nothing arrives before the connect ends).
      const ref: { current?: PgConnectionImpl } = {}
      const wire = yield* restore(Connect.connect(resolved, {
        onNotification: (channel, payload, processId) => ref.current?.dispatch(channel, payload, processId),
        onNotice: (notice) => ref.current?.report(logNotices(wire.id, [notice])),
        onListenerError: (error) =>
          ref.current?.report(Effect.logError(`PgConnection #${wire.id}: a listener threw`, Cause.die(error))),
        onDead: (lost) => ref.current?.died(lost)
      }))
      const conn = new PgConnectionImpl(wire, resolved)
      ref.current = conn
      // Finalizers run in reverse: the close runs first, then the FiberSet ends its fibers.
      const fibers = yield* FiberSet.make()
      conn.runFork = yield* FiberSet.runtime(fibers)<never>()
      yield* Effect.addFinalizer(() => conn.close)
      if (resolved.onConnect.length > 0) {
        yield* restore(
          Effect.forEach(resolved.onConnect, (sql) => conn.query(sql, []), { discard: true }).pipe(
            Effect.mapError((error) => Connect.connectError(resolved, "Protocol", error)),
            Effect.timeoutFail({
              duration: resolved.connectTimeout,
              onTimeout: () => Connect.connectError(resolved, "Timeout")
            })
          )
        )
        wire.sessionChanges = 0
        wire.statementsRun = 0
      }
      return conn as PgConnection.PgConnection
    })
  )

/** @internal */
export { toQueryError }
