/**
 * One PostgreSQL connection as a scoped resource: `make` connects (bounded by
 * `connectTimeout`) and registers a finalizer that cancels a running statement on the server,
 * sends Terminate and closes the socket, all within bounds. Interrupting a `query` sends a
 * CancelRequest on a side socket and waits (bounded by `cancelTimeout`) for the server to
 * end the statement; if it does not, the connection is destroyed. A dropped socket fails the
 * running statement with `PgConnectionLost` and never crashes the process.
 *
 * The protocol runs in `internal/wire` (plain TypeScript, no Effect): one state machine per
 * connection (`connecting | idle | busy | cancelling | closing | dead`). A connection accepts
 * several statements at once and pipelines them (written together, one Sync each, answered in
 * order); a cancel is exact (see `query`). The pool decides who may pipeline: with
 * `PgPoolOptions.pipeline` (the default), single statements outside transactions share a busy
 * connection when the pool is at `max`; every other lease has its connection alone.
 *
 * @since 0.1.0
 */
import type { PoolConfigError } from "@scoped-pool/core/PoolError"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Duplex } from "node:stream"
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
  /**
   * Prepares the statement once per connection (Parse once, then Bind/Execute), kept in the
   * connection's LRU cache (`statementCacheSize`). A plan gone stale (0A000, 26000) is prepared
   * again and the statement re-run when outside a transaction block; inside one the statement
   * fails and is evicted. Default: `false` (unnamed statements, as PgBouncer < 1.21 needs).
   */
  readonly prepare?: boolean | undefined
  /** Legacy: any name prepares the statement, as `prepare: true` (the cache picks the server-side name). */
  readonly name?: string | undefined
}

/**
 * The connection's state: `connecting`, `idle`, `busy` (statements in flight), `copyIn` (a
 * `COPY … FROM STDIN` takes our data), `copyOut` (a `COPY … TO STDOUT` sends its rows),
 * `cancelling` (a CancelRequest in flight: nothing more is written until no signal can still
 * arrive), `closing` (every statement already failed; cancel, then Terminate), `dead`. (The
 * wire connection's own union, written out: that one is internal, and not published.)
 *
 * @since 0.2.0
 * @category models
 */
export type ConnectionState =
  | "connecting"
  | "idle"
  | "busy"
  | "copyIn"
  | "copyOut"
  | "cancelling"
  | "closing"
  | "dead"

/**
 * What the return path resets besides the transaction (PgPool's `reset`):
 *
 * - `"auto"` (default): nothing for a lease whose statements left the session as they found it;
 *   otherwise the narrowest statements that undo what the server's command tags say changed —
 *   `SET`/`RESET` → `SET SESSION AUTHORIZATION DEFAULT; RESET ALL`, `LISTEN` → `UNLISTEN *`,
 *   SQL `PREPARE` → `DEALLOCATE ALL`, `DECLARE` → `CLOSE ALL`, `CREATE TABLE|VIEW|SEQUENCE` and
 *   `CREATE TABLE … AS` → `DISCARD TEMP` — then the `onConnect` statements again if settings
 *   were reset. Not seen by tags, so not reset: `set_config(…, false)` called from a `SELECT`,
 *   and session-level advisory locks (`pg_advisory_lock`), which stay held: release them
 *   (`pg_advisory_unlock`, or use the transaction-level `pg_advisory_xact_lock`), or choose
 *   `"always"`. `SET LOCAL` and transaction-level locks end with their transaction.
 * - `"always"`: `DISCARD ALL` after every lease (advisory locks included), then `onConnect`.
 * - `"transaction-only"`: only the transaction is rolled back; session state carries over.
 * - `{ sql }`: this SQL after every lease that ran a statement, then `onConnect`.
 *
 * @since 0.2.0
 * @category models
 */
export type SessionReset = "auto" | "always" | "transaction-only" | { readonly sql: string }

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
 * Type parsers: `pg-types` (`pg.types`), or any object whose `getTypeParser(oid, format)`
 * returns a parser of the column's text.
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
  /** The state machine's state. @since 0.2.0 */
  readonly state: ConnectionState
  /** Statements queued or in flight (pipelined). @since 0.2.0 */
  readonly queueDepth: number
  /** How long the statement at the head of the pipeline has been running, in ms (0 when none). @since 0.2.0 */
  readonly headRunningMillis: number
  /** A ParameterStatus value the server reported (`server_version`, `TimeZone`, …). @since 0.2.0 */
  readonly parameter: (name: string) => string | undefined
  /**
   * Runs one statement (`$1`-style parameters); with several statements in `sql` and no
   * parameters, returns the last one's result.
   *
   * **Details**
   *
   * Interrupting it (or its `queryTimeout` expiring) cancels it exactly: not yet written, it
   * is dropped; written, a CancelRequest goes on a side socket when it is at the head, and the
   * caller resumes only once no cancel signal can still arrive (the server confirmed 57014 and
   * ReadyForQuery, or closed every side socket) — within `cancelTimeout`, else the connection
   * is destroyed. Several calls at once are pipelined, answered in order. Notices the server
   * raises are logged at Debug, in the caller's fiber (so with its span).
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
  /** Whether `reset(mode)` has anything to do (the hot path asks this first). @since 0.2.0 */
  readonly resetNeeded: (mode: SessionReset) => boolean
  /**
   * `rollbackIfDirty`, then the session reset of `mode` (see `SessionReset`), bounded by
   * `cancelTimeout`. Returns whether the connection is alive and clean afterwards.
   *
   * @since 0.2.0
   */
  readonly reset: (mode: SessionReset) => Effect.Effect<boolean>
  /**
   * Registers a listener for LISTEN notifications on this session (run `LISTEN channel`
   * with `query`); returns the function that unregisters it.
   */
  readonly onNotification: (listener: (notification: Notification) => void) => () => void
  /**
   * Registers a listener called once when the connection stops being alive: with the
   * `PgConnectionLost` when it was lost (socket closed or reset, a fatal error from the server,
   * an unconfirmed cancel), with `undefined` when it was closed. Registered on a connection
   * that is no longer alive, it is called at once. The listener must not throw. Returns the
   * function that unregisters it.
   */
  readonly onClose: (listener: (lost: PgConnectionLost | undefined) => void) => () => void
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
  /** Unwrapped only when the server asks for it; never logged nor put in an error. */
  readonly password?: Redacted.Redacted<string> | undefined
  /**
   * `true` (TLS, certificate and host checked), or node TLS options (checked unless
   * `rejectUnauthorized: false`). Default: `false`. `sslmode` wins over it.
   */
  readonly ssl?: boolean | Tls.ConnectionOptions | undefined
  /**
   * libpq's `sslmode`: `disable`, `allow` (plain first, then TLS), `prefer` (TLS first, then
   * plain), `require` (TLS, certificate unchecked), `verify-ca` (chain checked), `verify-full`
   * (chain and host checked). TLS options from `ssl` (a certificate authority…) still apply.
   * Default: from `ssl`.
   *
   * @since 0.2.0
   */
  readonly sslmode?: "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full" | undefined
  /**
   * Statements run once on every new connection, before its first use (for example
   * `SET search_path TO app, public`), and again after a reset that reset settings. A failure
   * fails the connection attempt.
   *
   * @since 0.2.0
   */
  readonly onConnect?: ReadonlyArray<string> | undefined
  /** Prepared statements kept per connection (LRU). Default: 100. @since 0.2.0 */
  readonly statementCacheSize?: number | undefined
  /**
   * The protocol version asked for: `"3.0"` (default), or `"3.2"` (PostgreSQL 18: longer
   * cancel keys); an older server answers with the version it speaks, and that is used.
   *
   * @since 0.2.0
   */
  readonly protocol?: "3.0" | "3.2" | undefined
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
   * fails with `PgQueryTimeout` once the cancel has ended (a statement that finished before the
   * cancel took effect returns its own result). Default: none (`PgPool` sets it, see its `queryTimeout`).
   */
  readonly queryTimeout?: Duration.DurationInput | undefined
  /** `statement_timeout`: the server's own bound on each statement. Default: the server's. */
  readonly statementTimeout?: Duration.DurationInput | undefined
  /** `lock_timeout`. Default: the server's. */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /** `idle_in_transaction_session_timeout`. Default: the server's. */
  readonly idleInTransactionTimeout?: Duration.DurationInput | undefined
  /** Type parsers: `getTypeParser(oid, "text")` for each column. Default: `pg-types`' (as `pg`). */
  readonly types?: TypeParsers | undefined
  /**
   * Server settings sent in the startup packet, by name (what libpq's `options=-c name=value`
   * sets): `{ search_path: "app,public" }`. The settings above (`statementTimeout`…) are sent
   * as well and take precedence over the same names here. Default: none.
   */
  readonly startupParameters?: Readonly<Record<string, string>> | undefined
  /**
   * Makes the socket the connection runs on, instead of a TCP or Unix socket to `host`/`port`
   * (as `pg`'s and `@effect/sql-pg`'s `stream`, for tunnels and runtimes without `node:net`):
   * a socket-like `Duplex` whose `connect(port, host)` the connection calls (and `setNoDelay`,
   * `setKeepAlive` where present), then speaks the protocol over it, TLS included when `ssl`
   * is set; a stream without `connect` is taken as connected. The factory is called again for
   * each cancel's side socket, so a CancelRequest takes the same path. Default: none.
   *
   * @since 0.2.0
   */
  readonly stream?: (() => Duplex) | undefined
}

/**
 * Connects to PostgreSQL; the connection lives until the scope closes.
 *
 * **Details**
 *
 * Fails with `PgConnectError` (classified by `reason`) when the server cannot be reached,
 * rejects the login, or does not complete the startup within `connectTimeout`. Invalid
 * options (a non-positive timeout, a bad port) fail with a `PoolConfigError` naming the field
 * and what it must be, before anything is opened. The scope's finalizer cancels a
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
export const make: (
  options: PgConnectionOptions
) => Effect.Effect<PgConnection, PgConnectError | PoolConfigError, Scope.Scope> = internal.make

/**
 * Tells whether a value is a `PgConnection`.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isPgConnection: (u: unknown) => u is PgConnection = internal.isPgConnection
