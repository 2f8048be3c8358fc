/**
 * `@effect/sql` connections over the pool.
 *
 * Outside a transaction the acquirer hands out one shared `PooledConnection` that leases a
 * connection inside each statement (`Pool.use`): `@effect/sql` already wraps every statement's
 * acquirer in `Effect.scoped`, and adding a finalizer to that scope would cost more than the
 * statement's own overhead. A transaction leases one connection for its scope
 * (`TransactionConnection`), on which statements of concurrent child fibers are serialised.
 *
 * @internal
 */
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Pool from "@scoped-pool/core/Pool"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as PgConnection from "../PgConnection.js"
import type { PgConnectError, PgConnectionLost, PgQueryError, PgQueryTimeout } from "../PgError.js"

type Rows = ReadonlyArray<any>
type Transform = (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** @internal */
export interface Settings {
  readonly prepare: boolean
  readonly streamChunkSize: number
}

/** @internal */
export const toSqlError = (error: unknown): SqlError =>
  error instanceof SqlError
    ? error
    : new SqlError({ cause: error, message: error instanceof Error ? error.message : "Failed to execute statement" })

// Statement names for the prepared-statement cache, shared by every connection: a name always
// stands for the same text, so a connection that has prepared it reuses it. Bounded: past the
// limit, new statements run unnamed.
const names = new Map<string, string>()
const maxNames = 2_000
const nameFor = (sql: string): string | undefined => {
  let name = names.get(sql)
  if (name === undefined && names.size < maxNames) {
    name = `sp_${names.size.toString(36)}`
    names.set(sql, name)
  }
  return name
}

const isStalePlan = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { code?: unknown }).code === "0A000"

const rowsOf = (results: ReadonlyArray<PgConnection.RawQueryResult>): Rows =>
  results.length === 1 ? results[0]!.rows : results.map((r) => r.rows)

const rawOf = (results: ReadonlyArray<PgConnection.RawQueryResult>): unknown =>
  results.length === 1 ? results[0] : results

/** Statements on one connection: shared by the pooled and the transaction connection. */
abstract class Base implements Connection {
  constructor(readonly settings: Settings) {}

  protected abstract run<A>(
    f: (conn: PgConnection.PgConnection) => Effect.Effect<A, PgQueryError | PgConnectionLost | PgQueryTimeout>
  ): Effect.Effect<A, SqlError>

  protected abstract stream(
    f: (conn: PgConnection.PgConnection) => Stream.Stream<any, PgQueryError | PgConnectionLost | PgQueryTimeout>
  ): Stream.Stream<any, SqlError>

  private options(sql: string, params: ReadonlyArray<unknown>, rowMode?: "array") {
    // Only statements with parameters are prepared: a parameterless text may hold several statements.
    const name = this.settings.prepare && params.length > 0 ? nameFor(sql) : undefined
    return name === undefined ? (rowMode ? { rowMode } : undefined) : rowMode ? { name, rowMode } : { name }
  }

  execute(sql: string, params: ReadonlyArray<unknown>, transformRows: Transform): Effect.Effect<Rows, SqlError> {
    const options = this.options(sql, params)
    const run = this.run((conn) => Effect.map(conn.queryRaw(sql, params, options), rowsOf))
    return transformRows === undefined ? run : Effect.map(run, transformRows)
  }

  executeRaw(sql: string, params: ReadonlyArray<unknown>): Effect.Effect<unknown, SqlError> {
    return this.run((conn) => Effect.map(conn.queryRaw(sql, params, this.options(sql, params)), rawOf))
  }

  executeValues(
    sql: string,
    params: ReadonlyArray<unknown>
  ): Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError> {
    const options = this.options(sql, params, "array")
    return this.run((conn) => Effect.map(conn.query(sql, params, options), (r) => r.rows))
  }

  executeUnprepared(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: Transform
  ): Effect.Effect<Rows, SqlError> {
    const run = this.run((conn) => Effect.map(conn.queryRaw(sql, params), rowsOf))
    return transformRows === undefined ? run : Effect.map(run, transformRows)
  }

  executeStream(sql: string, params: ReadonlyArray<unknown>, transformRows: Transform): Stream.Stream<any, SqlError> {
    const rows = this.stream((conn) => conn.cursor(sql, params, { chunkSize: this.settings.streamChunkSize }))
    return transformRows === undefined
      ? rows
      : Stream.mapChunks(rows, (chunk) => Chunk.unsafeFromArray(transformRows(Chunk.toReadonlyArray(chunk))))
  }
}

/** @internal */
export class PooledConnection extends Base {
  constructor(
    readonly pool: Pool.Pool<PgConnection.PgConnection, PgConnectError>,
    settings: Settings
  ) {
    super(settings)
  }

  protected run<A>(
    f: (conn: PgConnection.PgConnection) => Effect.Effect<A, PgQueryError | PgConnectionLost | PgQueryTimeout>
  ): Effect.Effect<A, SqlError> {
    if (!this.settings.prepare) return Effect.mapError(this.pool.use(f), toSqlError)
    // A schema change can invalidate a prepared statement's result type (0A000): retire that
    // connection, so that the failure happens at most once per connection.
    return Effect.mapError(
      this.pool.use((conn) =>
        Effect.tapError(f(conn), (error) => isStalePlan(error) ? Pool.invalidate(this.pool, conn) : Effect.void)
      ),
      toSqlError
    )
  }

  protected stream(
    f: (conn: PgConnection.PgConnection) => Stream.Stream<any, PgQueryError | PgConnectionLost | PgQueryTimeout>
  ): Stream.Stream<any, SqlError> {
    // The cursor owns its lease until the stream's scope closes.
    return Stream.mapError(Stream.unwrapScoped(Effect.map(this.pool.get, f)), toSqlError)
  }
}

// Built on use: an error captures a stack trace, too costly to make per transaction.
const streamBusy = Effect.suspend(() =>
  Effect.fail(
    new SqlError({
      message: "a stream is open on this transaction's connection; consume it or end its scope before running " +
        "another statement or stream in the same transaction"
    })
  )
)

/** @internal */
export class TransactionConnection extends Base {
  private streamOpen = false

  constructor(
    readonly conn: PgConnection.PgConnection,
    private readonly mutex: Effect.Semaphore,
    settings: Settings
  ) {
    super(settings)
  }

  private readonly streamBusy = streamBusy

  override executeUnprepared(
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: Transform
  ): Effect.Effect<Rows, SqlError> {
    // @effect/sql runs ROLLBACK under orDie: on a connection that died, the server has rolled
    // the transaction back already, so the rollback succeeds and the caller keeps its typed error.
    if (!this.conn.isAlive && /^\s*ROLLBACK\b/i.test(sql)) return Effect.succeed([])
    return super.executeUnprepared(sql, params, transformRows)
  }

  protected run<A>(
    f: (conn: PgConnection.PgConnection) => Effect.Effect<A, PgQueryError | PgConnectionLost | PgQueryTimeout>
  ): Effect.Effect<A, SqlError> {
    // Statements of concurrent child fibers of the transaction run one at a time.
    return Effect.suspend(() =>
      this.streamOpen
        ? this.streamBusy
        : Effect.mapError(this.mutex.withPermits(1)(f(this.conn)), toSqlError)
    )
  }

  protected stream(
    f: (conn: PgConnection.PgConnection) => Stream.Stream<any, PgQueryError | PgConnectionLost | PgQueryTimeout>
  ): Stream.Stream<any, SqlError> {
    const open = Effect.acquireRelease(
      Effect.suspend(() => {
        if (this.streamOpen) return this.streamBusy
        this.streamOpen = true
        return this.mutex.take(1)
      }),
      () =>
        Effect.zipRight(
          this.mutex.release(1),
          Effect.sync(() => {
            this.streamOpen = false
          })
        )
    )
    return Stream.mapError(Stream.unwrapScoped(Effect.as(open, f(this.conn))), toSqlError)
  }
}
