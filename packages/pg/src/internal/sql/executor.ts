/**
 * How a statement runs: compiled once (the compiler caches the text on the statement), one
 * `sql.execute` span, one look-up of `@effect/sql`'s `TransactionConnection` — the source of
 * truth for "am I in a transaction", whoever opened it — and then:
 *
 * - none: a lease for the statement, with `Pool.use` (no Scope, no finalizer), or with
 *   pipelining `Pool.useShared`: a busy connection's, when none is idle and the pool is full;
 * - one of our `Level`s: its session's turn (see `Session`);
 * - any other `@effect/sql` `Connection`: that connection's own method, as `@effect/sql` would.
 *
 * One step per statement sees its exit: errors become `SqlError`s and the span (if any) ends
 * there; with a span, or inside a transaction (whose turn must be given back), that step is an
 * uninterruptible region, so that an interruption is seen too. A `Statement.Transformer` (rare:
 * set by a FiberRef) takes `@effect/sql`'s own span machinery, since it receives the span.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Pool from "@scoped-pool/core/Pool"
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import type * as PgConnection from "../../PgConnection.js"
import { toSqlError } from "./errors.js"
import * as Operation from "./operation.js"
import * as Session from "./session.js"
import * as Span from "./span.js"

type TransactionTag = readonly [conn: Connection, depth: number]

const spanOptions = { kind: "client", captureStackTrace: false } as const

const ATTR_DB_OPERATION_NAME = "db.operation.name"
const ATTR_DB_QUERY_TEXT = "db.query.text"

const transactionOf = (fiber: Fiber.RuntimeFiber<any, any>): TransactionTag | undefined =>
  fiber.currentContext.unsafeMap.get(SqlClient.TransactionConnection.key)

/**
 * Runs `effect` (a statement), then `handlers` with how it ended. With a span, in a region that
 * sees an interruption too, so that the span always ends; without one an interruption has
 * nothing to settle.
 */
const settle = <A, E>(
  effect: Effect.Effect<A, E>,
  span: Span.Started | undefined,
  handlers: {
    readonly onFailure: (cause: Cause.Cause<E>) => Effect.Effect<unknown, SqlError>
    readonly onSuccess: (value: A) => Effect.Effect<unknown, SqlError>
  }
): Effect.Effect<unknown, SqlError> =>
  span === undefined
    ? Effect.matchCauseEffect(effect, handlers)
    : Effect.uninterruptibleMask((restore) => Effect.matchCauseEffect(restore(effect), handlers))

// Hot path: the handlers are methods, not arrow properties (no per-statement naming under tsx's
// keepNames), and the lease callback is an inline argument.
const pooled = (
  core: Operation.Core,
  operation: Operation.Operation,
  sql: string,
  params: ReadonlyArray<unknown>,
  span: Span.Started | undefined
): Effect.Effect<unknown, SqlError> => {
  const pool = core.pool
  const query = core.prepare
    ? (conn: PgConnection.PgConnection) =>
      // A stale plan retires its connection when the lease ends: it fails at most once per connection.
      Effect.tapError(
        operation.query(conn, sql, params, true),
        (error) => Operation.isStalePlan(error) ? Pool.invalidate(pool, conn) : Effect.void
      )
    : (conn: PgConnection.PgConnection) => operation.query(conn, sql, params, false)
  // With pipelining, a lease that may share a busy connection (see `PgPoolOptions.pipeline`).
  const leased = core.pipeline ? Pool.useShared(pool, query) : pool.use(query)
  return settle(leased, span, {
    onFailure(cause) {
      return Operation.failed(core, cause, sql, span, undefined)
    },
    onSuccess(value) {
      return Operation.succeeded(operation, value, core.transformRows, span)
    }
  })
}

const foreign = (
  core: Operation.Core,
  conn: Connection,
  operation: Operation.Operation,
  sql: string,
  params: ReadonlyArray<unknown>,
  span: Span.Started | undefined
): Effect.Effect<unknown, SqlError> =>
  settle(operation.foreign(conn, sql, params, core.transformRows), span, {
    onFailure(cause) {
      return Operation.failed(core, cause, sql, span, undefined)
    },
    onSuccess(value) {
      Span.end(span, Exit.succeed(value))
      return Effect.succeed(value)
    }
  })

const onConnection = (
  fiber: Fiber.RuntimeFiber<any, any>,
  core: Operation.Core,
  operation: Operation.Operation,
  sql: string,
  params: ReadonlyArray<unknown>,
  span: Span.Started | undefined
): Effect.Effect<unknown, SqlError> => {
  const transaction = transactionOf(fiber)
  if (transaction === undefined) return pooled(core, operation, sql, params, span)
  const conn = transaction[0]
  if (conn instanceof Session.Level) return Session.run(conn, operation, sql, params, core.transformRows, span)
  return foreign(core, conn, operation, sql, params, span)
}

/**
 * Runs `statement` as `operation`.
 *
 * @internal
 */
export const run = (
  statement: Statement.Statement<unknown>,
  operation: Operation.Operation,
  core: Operation.Core
): Effect.Effect<unknown, SqlError> =>
  Effect.withFiberRuntime((fiber) => {
    const transformer = fiber.getFiberRef(Statement.currentTransformer)
    if (transformer._tag === "Some") return transformed(fiber, transformer.value, statement, operation, core)
    const [sql, params] = core.compiler.compile(statement, operation.withoutTransform)
    return onConnection(
      fiber,
      core,
      operation,
      sql,
      params,
      Span.statement(fiber, core.spanAttributes, operation.name, sql)
    )
  })

const annotate = (span: Tracer.Span, core: Operation.Core, operation: string, sql: string): void => {
  for (const [key, value] of core.spanAttributes) span.attribute(key, value)
  span.attribute(ATTR_DB_OPERATION_NAME, operation)
  span.attribute(ATTR_DB_QUERY_TEXT, sql)
}

const transformed = (
  fiber: Fiber.RuntimeFiber<any, any>,
  transformer: Statement.Statement.Transformer,
  statement: Statement.Statement<unknown>,
  operation: Operation.Operation,
  core: Operation.Core
): Effect.Effect<unknown, SqlError> =>
  Effect.useSpan(
    "sql.execute",
    spanOptions,
    (span) =>
      Effect.flatMap(transformer(statement, core.sql(), fiber.getFiberRefs(), span), (changed) => {
        const [sql, params] = changed.compile(operation.withoutTransform)
        annotate(span, core, operation.name, sql)
        return onConnection(fiber, core, operation, sql, params, undefined)
      })
  )

/**
 * `statement.stream`: its span lasts as long as the stream. Outside a transaction the stream
 * holds its own lease until its scope ends.
 *
 * @internal
 */
export const stream = (statement: Statement.Statement<unknown>, core: Operation.Core): Stream.Stream<any, SqlError> =>
  Stream.unwrapScoped(Effect.flatMap(
    Effect.makeSpanScoped("sql.execute", spanOptions),
    (span) =>
      Effect.withFiberRuntime<Stream.Stream<any, SqlError>, SqlError, Scope.Scope>((fiber) => {
        const transformer = fiber.getFiberRef(Statement.currentTransformer)
        const open = (changed: Statement.Statement<unknown>) => {
          const [sql, params] = changed.compile(false)
          annotate(span, core, "executeStream", sql)
          const transaction = transactionOf(fiber)
          if (transaction === undefined) {
            return Effect.map(
              Effect.mapError(core.pool.get, (error) => toSqlError(error)),
              (conn) => Session.cursor(conn, sql, params, core.streamChunkSize, core.transformRows)
            )
          }
          const conn = transaction[0]
          return Effect.succeed(
            conn instanceof Session.Level
              ? conn.session.stream(conn, sql, params, core.transformRows)
              : conn.executeStream(sql, params, core.transformRows)
          )
        }
        return transformer._tag === "Some"
          ? Effect.flatMap(transformer.value(statement, core.sql(), fiber.getFiberRefs(), span), open)
          : open(statement)
      })
  ))
