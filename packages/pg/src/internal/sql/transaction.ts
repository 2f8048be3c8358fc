/**
 * `withTransaction`, without a Scope or a Semaphore per transaction.
 *
 * Outside a transaction it leases a connection for the transaction's life with `Pool.use`, runs
 * BEGIN, the body with `@effect/sql`'s `TransactionConnection` set to the transaction's root
 * `Level` (and the `sql.transaction` span as parent span), then COMMIT — or ROLLBACK if the
 * body failed. Inside one of ours it opens a nested `Level` (a SAVEPOINT of its own name) on
 * the same `Session`. Inside a transaction of other `@effect/sql` code (whose connection is not
 * ours) it nests with a SAVEPOINT on that connection, as `@effect/sql` does, but with a unique
 * name.
 *
 * Only the body is interruptible. A failing COMMIT (a deferred constraint) or ROLLBACK is the
 * caller's typed `SqlError`, never a defect: `@effect/sql` 0.52 runs both under `orDie`.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Tracer from "effect/Tracer"
import { toSqlError } from "./errors.js"
import type * as Operation from "./operation.js"
import { Level, Session } from "./session.js"
import * as Span from "./span.js"

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

type Outcome<A, E, R> = Effect.Effect<Exit.Exit<A, E | SqlError>, never, R>

/**
 * Runs the body (interruptibly) with `tag` as the transaction connection and the span as parent
 * span, then `then` with how it ended (uninterruptibly, the caller's context back in place).
 */
const body = <A, E, R, B>(
  restore: Restore,
  effect: Effect.Effect<A, E, R>,
  context: Context.Context<never>,
  tag: readonly [conn: Connection, depth: number],
  span: Span.Started | undefined,
  then: (exit: Exit.Exit<A, E>) => Effect.Effect<B>
): Effect.Effect<B, never, R> => {
  let inner = Context.add(context, SqlClient.TransactionConnection, tag)
  if (span !== undefined) inner = Context.add(inner, Tracer.ParentSpan, span.span)
  return Effect.zipRight(
    FiberRef.set(FiberRef.currentContext, inner),
    Effect.flatMap(
      Effect.exit(restore(effect)),
      (exit) => Effect.zipRight(FiberRef.set(FiberRef.currentContext, context), then(exit))
    )
  )
}

/** Ends the span with the outcome, and returns the outcome. */
const settle = <A, E, R>(
  span: Span.Started | undefined,
  outcome: Outcome<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.flatMap(outcome, (exit) => {
    Span.end(span, exit)
    return exit
  })

// The handlers are methods, not arrow properties: no per-transaction naming under tsx's keepNames.
const root = <A, E, R>(
  core: Operation.Core,
  restore: Restore,
  effect: Effect.Effect<A, E, R>,
  context: Context.Context<never>,
  span: Span.Started | undefined
): Effect.Effect<A, E | SqlError, R> =>
  Effect.matchCauseEffect(
    core.pool.use((conn) => {
      const session = new Session(conn, core)
      return session.begin((begun): Outcome<A, E, R> => {
        if (Exit.isFailure(begun)) {
          session.finish()
          return Effect.succeed(Exit.failCause(begun.cause))
        }
        return body(
          restore,
          effect,
          context,
          session.root.tag,
          span,
          (exit) => session.end(session.root, exit, "COMMIT", "ROLLBACK", span)
        )
      })
    }),
    {
      // The pool's own errors (PoolTimeout, PgConnectError, LeaseRevoked…), as SqlErrors.
      onFailure(cause) {
        const mapped = Cause.map(cause, (error) => toSqlError(error))
        Span.end(span, Exit.failCause(mapped))
        return Effect.failCause(mapped)
      },
      onSuccess(exit) {
        Span.end(span, exit)
        return exit
      }
    }
  )

const nested = <A, E, R>(
  parent: Level,
  restore: Restore,
  effect: Effect.Effect<A, E, R>,
  context: Context.Context<never>,
  span: Span.Started | undefined
): Effect.Effect<A, E | SqlError, R> => {
  const session = parent.session
  return settle(
    span,
    Effect.flatMap(Effect.exit(session.openNested(parent)), (opened): Outcome<A, E, R> => {
      if (Exit.isFailure(opened)) return Effect.succeed(Exit.failCause(opened.cause))
      const level = opened.value
      return body(
        restore,
        effect,
        context,
        level.tag,
        span,
        (exit) => session.end(level, exit, undefined, `ROLLBACK TO SAVEPOINT ${level.savepoint}`, span)
      )
    })
  )
}

// Savepoint names on connections that are not ours: unique in the process.
let foreignSavepoints = 0

const foreign = <A, E, R>(
  conn: Connection,
  depth: number,
  restore: Restore,
  effect: Effect.Effect<A, E, R>,
  context: Context.Context<never>,
  span: Span.Started | undefined
): Effect.Effect<A, E | SqlError, R> => {
  const name = `scoped_pool_x${++foreignSavepoints}`
  return settle(
    span,
    Effect.flatMap(
      Effect.exit(conn.executeUnprepared(`SAVEPOINT ${name}`, [], undefined)),
      (saved): Outcome<A, E, R> => {
        if (Exit.isFailure(saved)) return Effect.succeed(Exit.failCause(saved.cause))
        return body(restore, effect, context, [conn, depth + 1], span, (exit): Outcome<A, E, never> => {
          if (Exit.isSuccess(exit)) {
            Span.event(span, "db.transaction.savepoint")
            return Effect.succeed(exit)
          }
          Span.event(span, "db.transaction.rollback")
          return Effect.map(
            Effect.exit(conn.executeUnprepared(`ROLLBACK TO SAVEPOINT ${name}`, [], undefined)),
            (rolledBack) =>
              Exit.isSuccess(rolledBack) ? exit : Exit.failCause(Cause.sequential(exit.cause, rolledBack.cause))
          )
        })
      }
    )
  )
}

/**
 * The client's `withTransaction`.
 *
 * @internal
 */
export const make =
  (core: Operation.Core) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.withFiberRuntime<A, E | SqlError, R>((fiber) => {
        const context = fiber.currentContext
        const span = Span.transaction(fiber, core.spanAttributes)
        const parent = context.unsafeMap.get(SqlClient.TransactionConnection.key) as
          | readonly [conn: Connection, depth: number]
          | undefined
        return parent === undefined
          ? root(core, restore, effect, context, span)
          : parent[0] instanceof Level
          ? nested(parent[0], restore, effect, context, span)
          : foreign(parent[0], parent[1], restore, effect, context, span)
      })
    )
