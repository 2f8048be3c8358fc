/**
 * One PostgreSQL connection as a scoped resource: `make` connects (bounded by
 * `connectTimeout`) and registers a finalizer that cancels a running statement on the server,
 * sends Terminate and closes the socket, all within bounds. Interrupting a `query` sends a
 * CancelRequest on a side socket and waits (bounded by `cancelTimeout`) for the server to
 * end the statement; if it does not, the connection is destroyed. A dropped socket fails the
 * running statement with `PgConnectionLost` and never crashes the process.
 *
 * A connection runs one statement at a time and never queues: the pool above it serialises.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Tls from "node:tls"
import * as internal from "./internal/connection.js"
import type { PgConnectError, PgConnectionLost, PgQueryError, PgQueryTimeout } from "./PgError.js"

/**
 * The identifier that marks a value as a `PgConnection`.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~@scoped-pool/pg/PgConnection" = internal.TypeId

/**
 * The type of {@link TypeId}.
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The session's transaction state as of the last ReadyForQuery: `"idle"` (`I`), in a
 * transaction block (`T`), or in a failed transaction block (`E`) that only `ROLLBACK` leaves.
 *
 * @since 0.1.0
 * @category models
 */
export type TransactionStatus = "idle" | "transaction" | "failed"

/**
 * A row: an object keyed by column name, or an array of values with `rowMode: "array"`.
 *
 * @since 0.1.0
 * @category models
 */
export type Row = any

/**
 * The rows of a statement with its command tag and row count.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueryResult {
  /** The rows, parsed by the type parsers. */
  readonly rows: ReadonlyArray<Row>
  /** Rows returned or affected (`null` when the command tag has no count). */
  readonly rowCount: number | null
  /** The command tag's verb: `SELECT`, `INSERT`, `UPDATE`… */
  readonly command: string
}

/**
 * A column of a result, as the server's RowDescription describes it.
 *
 * @since 0.1.0
 * @category models
 */
export interface FieldInfo {
  readonly name: string
  readonly tableID: number
  readonly columnID: number
  readonly dataTypeID: number
  readonly dataTypeSize: number
  readonly dataTypeModifier: number
  readonly format: string
}

/**
 * A statement's full result, with its fields.
 *
 * @since 0.1.0
 * @category models
 */
export interface RawQueryResult extends QueryResult {
  readonly fields: ReadonlyArray<FieldInfo>
}

/**
 * Options of one statement.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueryOptions {
  /** `"array"` returns each row as an array of values. Default: `"object"`. */
  readonly rowMode?: "array" | "object" | undefined
  /** Prepares the statement under this name once per connection and reuses it. */
  readonly name?: string | undefined
}

/**
 * Options of a cursor stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface CursorOptions {
  /** Rows fetched per round trip. */
  readonly chunkSize: number
  /** `"array"` returns each row as an array of values. Default: `"object"`. */
  readonly rowMode?: "array" | "object" | undefined
}

/**
 * A LISTEN notification.
 *
 * @since 0.1.0
 * @category models
 */
export interface Notification {
  readonly channel: string
  readonly payload: string
  /** The pid of the backend that sent NOTIFY. */
  readonly processId: number
}

/**
 * Type parsers, passed through to `pg` (for example `pg.types`, or an object whose
 * `getTypeParser(oid, format)` returns a parser).
 *
 * @since 0.1.0
 * @category models
 */
export interface TypeParsers {
  readonly getTypeParser: (...args: Array<any>) => any
}

/**
 * A connected PostgreSQL session.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgConnection {
  readonly [TypeId]: TypeId
  /** A local serial number, for logs. */
  readonly id: number
  /** The backend's pid on the server. */
  readonly processId: number
  /** As of the last ReadyForQuery. */
  readonly transactionStatus: TransactionStatus
  /** `false` after a socket error or close, a fatal SQLSTATE, or an unconfirmed cancel. */
  readonly isAlive: boolean
  /** A statement (or an open cursor) is in flight. */
  readonly busy: boolean
  /**
   * Runs one statement (`$1`-style parameters); with several statements in `sql` and no
   * parameters, returns the last one's result.
   *
   * **Details**
   *
   * Interrupting it sends a CancelRequest on a side socket and waits up to `cancelTimeout`
   * for the server to end the statement; if the server does not, the connection is
   * destroyed. Calling it while `busy` is a defect: the caller must serialise.
   */
  readonly query: (
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: QueryOptions
  ) => Effect.Effect<QueryResult, PgQueryError | PgConnectionLost | PgQueryTimeout>
  /** As `query`, with every statement's full result (one entry per statement in `sql`). */
  readonly queryRaw: (
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: QueryOptions
  ) => Effect.Effect<ReadonlyArray<RawQueryResult>, PgQueryError | PgConnectionLost | PgQueryTimeout>
  /**
   * Streams the rows of a statement through a server-side portal, `chunkSize` rows per round
   * trip. The connection is `busy` until the stream's scope ends; then the portal is closed
   * (a fetch still running is cancelled on the server first).
   */
  readonly cursor: (
    sql: string,
    params: ReadonlyArray<unknown>,
    options: CursorOptions
  ) => Stream.Stream<Row, PgQueryError | PgConnectionLost>
  /**
   * Cancels the statement in flight: a CancelRequest on a side socket, then a wait of at
   * most `cancelTimeout` for the statement to end. `"unconfirmed"` means the connection was
   * destroyed. With nothing in flight it is `"confirmed"` at once.
   */
  readonly cancel: Effect.Effect<"confirmed" | "unconfirmed">
  /**
   * Makes the session clean: cancels a statement still in flight, then, inside a transaction
   * block, runs `ROLLBACK` bounded by `cancelTimeout` (else destroys the connection).
   * Returns whether the connection is alive and idle afterwards.
   */
  readonly rollbackIfDirty: Effect.Effect<boolean>
  /**
   * Registers a listener for LISTEN notifications on this session (run `LISTEN channel`
   * with `query`); returns the function that unregisters it.
   */
  readonly onNotification: (listener: (notification: Notification) => void) => () => void
}

/**
 * How to reach the server and how long to wait for it.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgConnectionOptions {
  /** Host name, IP address, or the directory of a Unix socket (starting with `/`). */
  readonly host: string
  /** Default: 5432. */
  readonly port?: number | undefined
  readonly database: string
  readonly user: string
  /** Unwrapped only when handed to `pg`; never logged nor put in an error. */
  readonly password?: Redacted.Redacted<string> | undefined
  /** `true`, or node TLS options (passed through). Default: `false`. */
  readonly ssl?: boolean | Tls.ConnectionOptions | undefined
  /** Sent as the `application_name` startup parameter. */
  readonly applicationName?: string | undefined
  /** Bound on TCP connect, TLS and startup/authentication. Default: 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * Bound on a cancel: CancelRequest sent and the statement ended. Past it, the connection
   * is destroyed. Default: 1 second (a server answers a cancel in milliseconds; longer means
   * it or the network is in trouble, and a fresh connection is cheaper than waiting).
   */
  readonly cancelTimeout?: Duration.DurationInput | undefined
  /** Bound on Terminate and socket close in the finalizer. Default: 1 second. */
  readonly closeTimeout?: Duration.DurationInput | undefined
  /** TCP keepalive. Default: `true`. */
  readonly keepAlive?: boolean | undefined
  /**
   * Idle time before the first keepalive probe. Default: 30 seconds (the OS default, 2 hours,
   * leaves a dead idle connection unnoticed far too long).
   */
  readonly keepAliveInitialDelay?: Duration.DurationInput | undefined
  /**
   * The client's bound on each statement: past it the statement is cancelled on the server and
   * fails with `PgQueryTimeout`. Default: none (`PgPool` sets it, see its `queryTimeout`).
   */
  readonly queryTimeout?: Duration.DurationInput | undefined
  /** `statement_timeout`: the server's own bound on each statement. Default: the server's. */
  readonly statementTimeout?: Duration.DurationInput | undefined
  /** `lock_timeout`. Default: the server's. */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /** `idle_in_transaction_session_timeout`. Default: the server's. */
  readonly idleInTransactionTimeout?: Duration.DurationInput | undefined
  /** Type parsers passed through to `pg`. Default: `pg`'s. */
  readonly types?: TypeParsers | undefined
}

/**
 * Connects to PostgreSQL; the connection lives until the scope closes.
 *
 * **Details**
 *
 * Fails with `PgConnectError` (classified by `reason`) when the server cannot be reached,
 * rejects the login, or does not complete the startup within `connectTimeout`. Invalid
 * options (a non-positive timeout, a bad port) are a defect. The scope's finalizer cancels a
 * statement still in flight (bounded by `cancelTimeout`), sends Terminate and waits for the
 * socket to close (bounded by `closeTimeout`), then destroys the socket if it is still open;
 * it never fails and never hangs.
 *
 * **Example** (One query)
 *
 * ```ts
 * import * as Effect from "effect/Effect"
 * import * as Redacted from "effect/Redacted"
 * import * as PgConnection from "@scoped-pool/pg/PgConnection"
 *
 * const program = Effect.gen(function*() {
 *   const conn = yield* PgConnection.make({
 *     host: "127.0.0.1",
 *     database: "postgres",
 *     user: "postgres",
 *     password: Redacted.make("secret"),
 *     applicationName: "example"
 *   })
 *   const { rows } = yield* conn.query("SELECT $1::int + 1 AS answer", [41])
 *   return rows[0].answer
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: PgConnectionOptions) => Effect.Effect<PgConnection, PgConnectError, Scope.Scope> =
  internal.make

/**
 * Tells whether a value is a `PgConnection`.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isPgConnection: (u: unknown) => u is PgConnection = internal.isPgConnection
