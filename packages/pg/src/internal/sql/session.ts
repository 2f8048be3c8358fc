/**
 * The connection of one transaction (or of one `reserve`d lease), shared by the fibers that
 * run in it, and the rules by which they take turns on it.
 *
 * A `Session` has one `state`, changed only by `transition`:
 *
 * | state       | meaning                                   | a statement asking for the connection |
 * |-------------|-------------------------------------------|---------------------------------------|
 * | `idle`      | nobody uses the connection                | takes it at once (the fast path)       |
 * | `running`   | one statement (or BEGIN/SAVEPOINT/COMMIT) | waits its turn, FIFO                   |
 * | `streaming` | a stream's cursor holds it                | fails at once (see `streamBusy`)       |
 * | `ended`     | the transaction or reservation is over    | fails at once (see `ended`)            |
 *
 * Nested transactions are `Level`s on a stack (the root level is the transaction itself): a
 * statement runs only when its level is the top one, so while a nested transaction is open the
 * statements of its enclosing levels (sibling fibers) wait for it to end. That is what makes a
 * savepoint's rollback undo only its own work, never a sibling's (Effect-TS/effect#6935), and
 * every savepoint has its own name. An end (COMMIT, ROLLBACK, the end of a savepoint) goes
 * before every waiting statement and needs only the connection to be free.
 *
 * A `Level` is `@effect/sql`'s `Connection` of its level: it is what `TransactionConnection`
 * holds, so `@effect/sql` code inside our transaction runs its statements here, in turn.
 *
 * @internal
 */
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type * as PgConnection from "../../PgConnection.js"
import { ended, nestedStillOpen, streamBusy, toSqlError, turnTimeout } from "./errors.js"
import * as Operation from "./operation.js"
import * as Span from "./span.js"

type State = "idle" | "running" | "streaming" | "ended"

/** What a waiter wants the connection for. */
type Kind = "statement" | "stream" | "end"

class Waiter {
  state: "waiting" | "granted" | "done" = "waiting"
  constructor(
    readonly kind: Kind,
    readonly level: Level,
    readonly resume: (effect: Effect.Effect<void, SqlError>) => void
  ) {}
}

const failEnded = Effect.suspend(() => Effect.fail(ended()))
const failStreamBusy = Effect.suspend(() => Effect.fail(streamBusy()))

/**
 * One level of a transaction: the transaction itself (depth 0) or a nested one (a savepoint).
 *
 * @internal
 */
export class Level implements Connection {
  state: "open" | "ended" = "open"
  /** The value of `@effect/sql`'s `TransactionConnection` for this level. */
  readonly tag: readonly [conn: Connection, depth: number]

  constructor(
    readonly session: Session,
    readonly depth: number,
    readonly savepoint: string | undefined
  ) {
    this.tag = [this, depth]
  }

  execute(sql: string, params: ReadonlyArray<unknown>, transformRows: Operation.Transform) {
    return run(this, Operation.execute, sql, params, transformRows, undefined) as Effect.Effect<
      ReadonlyArray<any>,
      SqlError
    >
  }

  executeRaw(sql: string, params: ReadonlyArray<unknown>) {
    return run(this, Operation.raw, sql, params, undefined, undefined)
  }

  executeValues(sql: string, params: ReadonlyArray<unknown>) {
    return run(this, Operation.values, sql, params, undefined, undefined) as Effect.Effect<
      ReadonlyArray<ReadonlyArray<unknown>>,
      SqlError
    >
  }

  executeUnprepared(sql: string, params: ReadonlyArray<unknown>, transformRows: Operation.Transform) {
    // For `@effect/sql`'s own transaction code over our connections, which runs its ROLLBACK
    // under orDie: on a connection that is gone the server has rolled back already, so the
    // ROLLBACK succeeds and the caller keeps its typed error.
    if (!this.session.conn.isAlive && /^\s*ROLLBACK\b/i.test(sql)) return Effect.succeed([])
    return run(this, Operation.unprepared, sql, params, transformRows, undefined) as Effect.Effect<
      ReadonlyArray<any>,
      SqlError
    >
  }

  executeStream(sql: string, params: ReadonlyArray<unknown>, transformRows: Operation.Transform) {
    return this.session.stream(this, sql, params, transformRows)
  }
}

/**
 * Rows of a cursor on `conn`, as `SqlError`s and transformed. The caller owns the connection
 * for the stream's life.
 *
 * @internal
 */
export const cursor = (
  conn: PgConnection.PgConnection,
  sql: string,
  params: ReadonlyArray<unknown>,
  chunkSize: number,
  transformRows: Operation.Transform
): Stream.Stream<any, SqlError> => {
  const rows = Stream.mapError(conn.cursor(sql, params, { chunkSize }), (error) => toSqlError(error, sql))
  return transformRows === undefined
    ? rows
    : Stream.mapChunks(rows, (chunk) => Chunk.unsafeFromArray(transformRows(Chunk.toReadonlyArray(chunk))))
}

/** @internal */
export class Session {
  state: State = "idle"
  readonly root: Level
  private readonly levels: Array<Level>
  private readonly queue: Array<Waiter> = []
  private savepoints = 0

  constructor(
    readonly conn: PgConnection.PgConnection,
    readonly core: Operation.Core
  ) {
    this.root = new Level(this, 0, undefined)
    this.levels = [this.root]
  }

  private get top(): Level {
    return this.levels[this.levels.length - 1]!
  }

  // ---------------------------------------------------------------------------------------
  // The state and its one transition

  private transition(to: State): void {
    this.state = to
    switch (to) {
      case "idle":
        return this.grant()
      case "streaming":
        return this.failWaiters((waiter) => waiter.kind !== "end", failStreamBusy)
      case "ended":
        for (const level of this.levels) level.state = "ended"
        return this.failWaiters(() => true, failEnded)
    }
  }

  /** Hands the free connection to the first waiter allowed to take it: an end, else the top level's first. */
  private grant(): void {
    let index = this.queue.findIndex((waiter) => waiter.kind === "end")
    if (index < 0) {
      const top = this.top
      index = this.queue.findIndex((waiter) => waiter.level === top)
    }
    if (index < 0) return
    const waiter = this.queue.splice(index, 1)[0]!
    waiter.state = "granted"
    this.transition(waiter.kind === "stream" ? "streaming" : "running")
    waiter.resume(Effect.void)
  }

  private failWaiters(which: (waiter: Waiter) => boolean, error: Effect.Effect<never, SqlError>): void {
    const failing = this.queue.filter(which)
    if (failing.length === 0) return
    this.queue.splice(0, this.queue.length, ...this.queue.filter((waiter) => !which(waiter)))
    for (const waiter of failing) {
      waiter.state = "done"
      waiter.resume(error)
    }
  }

  // ---------------------------------------------------------------------------------------
  // Taking turns

  /** `true`: taken now; `false`: must wait; an Effect: fails now. */
  private attempt(kind: Kind, level: Level): boolean | Effect.Effect<never, SqlError> {
    if (this.state === "ended" || level.state === "ended") return failEnded
    if (kind !== "end" && this.state === "streaming") return failStreamBusy
    if (this.state !== "idle" || (kind !== "end" && level !== this.top)) return false
    this.transition(kind === "stream" ? "streaming" : "running")
    return true
  }

  /**
   * Takes the connection for `kind` at `level`: `undefined` when taken at once, else an Effect
   * that waits its turn or fails. A statement or stream waits FIFO, interruptibly, at most
   * `turnTimeout` (its turn may depend on user code: a sibling's nested transaction); an end
   * waits uninterruptibly, bounded by the one statement in flight.
   */
  take(kind: Kind, level: Level): Effect.Effect<void, SqlError> | undefined {
    const now = this.attempt(kind, level)
    if (now === true) return undefined
    if (now !== false) return now
    const wait = Effect.async<void, SqlError>((resume) => {
      // Again: the fiber may have yielded since the first attempt.
      const again = this.attempt(kind, level)
      if (again !== false) return resume(again === true ? Effect.void : again)
      const waiter = new Waiter(kind, level, resume)
      this.queue.push(waiter)
      return Effect.sync(() => this.cancel(waiter))
    })
    if (kind === "end") return wait
    const millis = this.core.turnTimeout
    return Effect.interruptible(Effect.timeoutFail(wait, { duration: millis, onTimeout: () => turnTimeout(millis) }))
  }

  /** A waiter was interrupted: it leaves the queue, or hands on the turn it was just given. */
  private cancel(waiter: Waiter): void {
    if (waiter.state === "waiting") {
      this.queue.splice(this.queue.indexOf(waiter), 1)
    } else if (waiter.state === "granted") {
      this.give()
    }
    waiter.state = "done"
  }

  /** Gives the connection back after a statement or a stream. */
  give(): void {
    if (this.state === "running" || this.state === "streaming") this.transition("idle")
  }

  // ---------------------------------------------------------------------------------------
  // Statements and streams

  /** A stream at `level`: holds the connection until the stream's scope ends. */
  stream(
    level: Level,
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: Operation.Transform
  ): Stream.Stream<any, SqlError> {
    const open = Effect.acquireRelease(
      Effect.suspend(() => this.take("stream", level) ?? Effect.void),
      () => Effect.sync(() => this.give())
    )
    return Stream.unwrapScoped(
      Effect.as(open, cursor(this.conn, sql, params, this.core.streamChunkSize, transformRows))
    )
  }

  // ---------------------------------------------------------------------------------------
  // Transaction boundaries (run by `Transaction`, in uninterruptible regions, at run time)

  /** Runs `sql` (BEGIN, SAVEPOINT, COMMIT, ROLLBACK…) while holding the connection, then `then` with how it ended. */
  private control<A, E, R>(
    sql: string,
    then: (ended: Exit.Exit<unknown, SqlError>) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> {
    return Effect.matchCauseEffect(this.conn.query(sql, []), {
      onFailure(cause) {
        return then(Exit.failCause(Cause.map(cause, (error) => toSqlError(error, sql))))
      },
      onSuccess() {
        return then(Exit.void)
      }
    })
  }

  /** BEGIN, on a session nobody else can see yet, then `then` with how it ended. */
  begin<A, E, R>(then: (begun: Exit.Exit<unknown, SqlError>) => Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return this.control("BEGIN", then)
  }

  /** A SAVEPOINT with a name of its own, in `parent`'s turn: the new top level. */
  openNested(parent: Level): Effect.Effect<Level, SqlError> {
    const taken = this.take("statement", parent)
    return taken === undefined ? this.savepoint(parent) : Effect.flatMap(taken, () => this.savepoint(parent))
  }

  private savepoint(parent: Level): Effect.Effect<Level, SqlError> {
    const level = new Level(this, parent.depth + 1, `scoped_pool_${++this.savepoints}`)
    return this.control(`SAVEPOINT ${level.savepoint}`, (saved) => {
      if (Exit.isSuccess(saved)) this.levels.push(level)
      this.give()
      return Exit.isSuccess(saved) ? Effect.succeed(level) : Effect.failCause(saved.cause)
    })
  }

  /**
   * Ends `level` (root or nested) once its body ended with `exit`: waits for the statement in
   * flight, if any, then runs `commit` (if any: the root's COMMIT) when `exit` succeeded and no
   * nested level above it is still open, else `rollback` (failing with `nestedStillOpen` when
   * only that was wrong). The span gets `@effect/sql`'s event as the end starts. Every level
   * from `level` up is then ended, and the session too when `level` is the root. The result is
   * `exit`, or the failure of the end — never a defect.
   */
  end<A, E>(
    level: Level,
    exit: Exit.Exit<A, E>,
    commit: string | undefined,
    rollback: string,
    span: Span.Started | undefined
  ): Effect.Effect<Exit.Exit<A, E | SqlError>> {
    const taken = this.take("end", level)
    if (taken === undefined) return this.ended(level, exit, commit, rollback, span)
    return Effect.matchCauseEffect(taken, {
      // An enclosing transaction ended this one already (its fiber was not joined).
      onFailure: (cause) => Effect.succeed(Exit.isFailure(exit) ? exit : Exit.failCause(cause)),
      onSuccess: () => this.ended(level, exit, commit, rollback, span)
    })
  }

  private ended<A, E>(
    level: Level,
    exit: Exit.Exit<A, E>,
    commit: string | undefined,
    rollback: string,
    span: Span.Started | undefined
  ): Effect.Effect<Exit.Exit<A, E | SqlError>> {
    if (Exit.isSuccess(exit) && level === this.top) {
      Span.event(span, commit === undefined ? "db.transaction.savepoint" : "db.transaction.commit")
      if (commit === undefined) {
        this.close(level)
        return Effect.succeed(exit)
      }
      return this.control(commit, (committed) => {
        this.close(level)
        return Effect.succeed(Exit.isSuccess(committed) ? exit : Exit.failCause(committed.cause))
      })
    }
    Span.event(span, "db.transaction.rollback")
    const result: Exit.Exit<A, E | SqlError> = Exit.isSuccess(exit) ? Exit.fail(nestedStillOpen()) : exit
    // A session that is gone has no transaction left: the server rolled it back.
    if (!this.conn.isAlive) {
      this.close(level)
      return Effect.succeed(result)
    }
    return this.control(rollback, (rolledBack) => {
      this.close(level)
      return Effect.succeed(
        Exit.isSuccess(rolledBack) || Exit.isSuccess(result)
          ? result
          : Exit.failCause(Cause.sequential(result.cause, rolledBack.cause))
      )
    })
  }

  /** After the end of `level`: it and every level above it are ended; so is the session with the root. */
  private close(level: Level): void {
    if (level === this.root) return this.transition("ended")
    for (const ended of this.levels.splice(this.levels.indexOf(level))) ended.state = "ended"
    this.failWaiters((waiter) => waiter.level.state === "ended", failEnded)
    this.give()
  }

  /** Ends a reserved connection's session (its lease is being returned). */
  finish(): void {
    if (this.state !== "ended") this.transition("ended")
  }
}

/**
 * Runs a statement at `level` in its turn; the span (if any) ends with it. The statement itself
 * is interruptible (an interrupt cancels it on the server); the turn is given back however it
 * ends. (A function rather than a method: the handlers below close over `session`.)
 *
 * @internal
 */
export const run = (
  level: Level,
  operation: Operation.Operation,
  sql: string,
  params: ReadonlyArray<unknown>,
  transformRows: Operation.Transform,
  span: Span.Started | undefined
): Effect.Effect<unknown, SqlError> =>
  Effect.uninterruptibleMask((restore) => {
    const session = level.session
    const { conn, core } = session
    const taken = session.take("statement", level)
    let held = taken === undefined
    const query = held
      ? restore(operation.query(conn, sql, params, core.prepare))
      : Effect.flatMap(taken!, () => {
        held = true
        return restore(operation.query(conn, sql, params, core.prepare))
      })
    return Effect.matchCauseEffect(query, {
      onFailure(cause) {
        if (held) session.give()
        return Operation.failed(core, cause, sql, span, conn)
      },
      onSuccess(value) {
        session.give()
        return Operation.succeeded(operation, value, transformRows, span)
      }
    })
  })
