/**
 * The `SqlClient` our layers provide: `@effect/sql`'s whole client surface (the statement
 * constructor and its helpers, `withTransaction`, `reserve`, `withoutTransforms`, `safe`,
 * `reactive`, `reactiveMailbox`) over the pool, with our own statement path:
 *
 * - `sql/statement.ts`: the statements and the constructor;
 * - `sql/executor.ts`: how a statement runs (no Scope per statement; one span);
 * - `sql/session.ts`: a transaction's connection and its turns (no Semaphore);
 * - `sql/transaction.ts`: `withTransaction` (COMMIT failures are typed);
 * - `sql/operation.ts`, `sql/span.ts`, `sql/errors.ts`: what they share.
 *
 * `@effect/sql`'s `TransactionConnection` stays the source of truth for transactions, so code
 * that mixes this client with other `@effect/sql` code (resolvers, a second client) agrees on
 * which transaction a fiber is in.
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { toSqlError } from "./sql/errors.js"
import type * as Operation from "./sql/operation.js"
import { Session } from "./sql/session.js"
import { makeConstructor } from "./sql/statement.js"
import * as Transaction from "./sql/transaction.js"

export {
  /** @internal */
  toSqlError
} from "./sql/errors.js"

/** What the client is built from: the statement path's `Core`, less what is built here. @internal */
export interface Options extends Omit<Operation.Core, "sql"> {}

/**
 * A connection of the pool for the current scope, as `@effect/sql`'s `Connection`: its
 * statements take turns like a transaction's, and fail once the scope has ended.
 */
const reserve = (core: Operation.Core): Effect.Effect<Connection, SqlError, Scope.Scope> =>
  Effect.uninterruptible(
    Effect.flatMap(Effect.mapError(core.pool.get, (error) => toSqlError(error)), (conn) => {
      const session = new Session(conn, core)
      // Added after the lease's own finalizer, so it runs first: nothing runs on a returned lease.
      return Effect.as(Effect.addFinalizer(() => Effect.sync(() => session.finish())), session.root)
    })
  )

const coreOf = (
  options: Options,
  compiler: Statement.Compiler,
  transformRows: Operation.Transform
): Operation.Core => {
  const core: Operation.Core = {
    pool: options.pool,
    prepare: options.prepare,
    pipeline: options.pipeline,
    streamChunkSize: options.streamChunkSize,
    turnTimeout: options.turnTimeout,
    compiler,
    spanAttributes: options.spanAttributes,
    transformRows,
    sql: () => constructor
  }
  const constructor = makeConstructor(core)
  return core
}

/**
 * Builds the client.
 *
 * @internal
 */
export const make = (options: Options): Effect.Effect<SqlClient.SqlClient, never, Reactivity.Reactivity> =>
  Effect.map(Reactivity.Reactivity, (reactivity) => {
    const core = coreOf(options, options.compiler, options.transformRows)
    const client: SqlClient.SqlClient = Object.assign(core.sql(), {
      [SqlClient.TypeId]: SqlClient.TypeId as SqlClient.TypeId,
      safe: undefined as unknown as SqlClient.SqlClient,
      withTransaction: Transaction.make(core),
      reserve: reserve(core),
      // As @effect/sql's: a copy of this client (whatever was added to it) whose statements
      // compile and read rows without the name transforms.
      withoutTransforms(this: SqlClient.SqlClient): SqlClient.SqlClient {
        if (options.transformRows === undefined) return this
        const plain = coreOf(options, options.compiler.withoutTransform, undefined).sql()
        const copy = Object.assign(plain, { ...this, ...plain }) as unknown as {
          -readonly [K in keyof SqlClient.SqlClient]: SqlClient.SqlClient[K]
        }
        copy.safe = copy as unknown as SqlClient.SqlClient
        copy.withoutTransforms = () => copy as unknown as SqlClient.SqlClient
        return copy as unknown as SqlClient.SqlClient
      },
      reactive: reactivity.stream,
      reactiveMailbox: reactivity.query
    })
    ;(client as { safe: SqlClient.SqlClient }).safe = client
    return client
  })
