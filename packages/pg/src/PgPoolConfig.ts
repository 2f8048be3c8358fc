/**
 * The options of a PostgreSQL pool — where the server is, how long each thing may take, how
 * large the pool is — and `fromEnv`, which reads them from `DATABASE_URL` or the libpq `PG*`
 * variables plus `PGPOOL_*` for the pool. Passwords stay `Redacted` throughout.
 *
 * Every field of `@effect/sql-pg`'s `PgClientConfig` is accepted with its meaning there, so a
 * `PgClient.layer(config)` becomes `PgPool.layer(config)` unchanged; where that config and
 * ours name the same thing (`maxConnections` and `max`), either spelling works, and both
 * given with different values fail with a `PoolConfigError` naming both.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { PoolConfigError } from "@scoped-pool/core/PoolError"
import type * as PoolOptions from "@scoped-pool/core/PoolOptions"
import type * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { Duplex } from "node:stream"
import type * as Tls from "node:tls"
import * as internal from "./internal/config.js"
import type { PgConnection, PgConnectionOptions, SessionReset, TypeParsers } from "./PgConnection.js"
import type { DefaultedSetting, PgConnectError } from "./PgError.js"

/**
 * Everything `PgPool.make` can be told. All fields are optional: without any, the pool
 * connects to `postgres@localhost:5432/postgres`. The pool's sizes and bounds (`min`, `max`,
 * `acquireTimeout`, …) are `PoolOptions`' own, with the same defaults.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgPoolOptions extends
  Pick<
    PoolOptions.Options<PgConnection, PgConnectError, never>,
    | "min"
    | "max"
    | "acquireTimeout"
    | "maxWaiting"
    | "idleTimeout"
    | "maxLifetime"
    | "lifetimeJitter"
    | "maxUses"
    | "checkAfterIdle"
    | "reconnectTimeout"
    | "closeTimeout"
    | "leakThreshold"
    | "retrySchedule"
    | "minRetryDelay"
    | "releaseTimeout"
  >
{
  /**
   * Where the server is, as libpq reads it: a URI
   * (`postgres://user:password@host:5432/database?sslmode=require&options=-c%20search_path%3Dapp`)
   * or `key=value` pairs (`host=db dbname=app user=app password='a b'`). Supported parameters:
   * `host` (a name, an address, or a Unix socket directory), `port`, `dbname`, `user`, `password`,
   * `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `application_name`, `fallback_application_name`,
   * `options` (`-c name=value` server settings), `connect_timeout` (seconds), `keepalives`,
   * `keepalives_idle`; an unknown or unsupported one fails with `PoolConfigError` naming it.
   * A plain string is accepted and wrapped in `Redacted` at once. The fields below must agree
   * with what it says.
   */
  readonly url?: Redacted.Redacted<string> | string | undefined
  /** Host name, IP address, or the directory of a Unix socket. Default: `"localhost"`. */
  readonly host?: string | undefined
  /** Default: 5432. */
  readonly port?: number | undefined
  /**
   * A Unix socket: its directory (`/var/run/postgresql`) or its file
   * (`/var/run/postgresql/.s.PGSQL.5432`, whose suffix gives the port). Another spelling of `host`.
   */
  readonly path?: string | undefined
  /** Default: the user name (as libpq). */
  readonly database?: string | undefined
  /** Default: `"postgres"`. */
  readonly username?: string | undefined
  /** A plain string is accepted and wrapped in `Redacted` at once. */
  readonly password?: Redacted.Redacted<string> | string | undefined
  /** `true`, or node TLS options. Default: from `sslmode` in the URL, else off. */
  readonly ssl?: boolean | Tls.ConnectionOptions | undefined
  /**
   * libpq's `sslmode` (also read from the URL and `PGSSLMODE`): `disable`, `allow` (plain first,
   * then TLS), `prefer` (TLS first, then plain), `require` (TLS, certificate unchecked),
   * `verify-ca` (chain checked), `verify-full` (chain and host name checked). TLS options given
   * as `ssl` (a certificate authority…) still apply. Default: from `ssl`, else `disable`.
   */
  readonly sslmode?: "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full" | undefined
  /**
   * The `application_name` of every connection; also the pool's name. Default: the URL's
   * `fallback_application_name`, else `"scoped-pool"`.
   */
  readonly applicationName?: string | undefined
  /** Makes the socket of each connection (see `PgConnectionOptions.stream`), as `@effect/sql-pg`. */
  readonly stream?: (() => Duplex) | undefined

  /** `@effect/sql-pg`'s spelling of `max`. */
  readonly maxConnections?: number | undefined
  /** `@effect/sql-pg`'s spelling of `min`. */
  readonly minConnections?: number | undefined
  /** `@effect/sql-pg`'s spelling of `maxLifetime`. */
  readonly connectionTTL?: Duration.DurationInput | undefined

  /**
   * By default the layer opens one connection while it is built and fails with the
   * `PgConnectError` if the server cannot be reached or refuses the login (as
   * `PgClient.layer` does), so that an application does not start broken. `true` builds the
   * layer without connecting: the first statement connects, for applications that must start
   * while the database is down. Default: false.
   */
  readonly lazy?: boolean | undefined

  /** Bound on connecting (TCP, TLS, authentication). Default: 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * Bound on every statement, enforced by the client: on expiry the statement is cancelled on
   * the server. Default: 2 minutes. The server's `statement_timeout` is set a little above it
   * as the safety net for what no client can handle — the client killed with SIGKILL, or the
   * network lost — so a statement never runs on forever. A `statement_timeout` set in the
   * URL's `options` replaces that safety net.
   */
  readonly queryTimeout?: Duration.DurationInput | undefined
  /** Bound on a cancel's confirmation by the server; past it the connection is destroyed. Default: 1 second. */
  readonly cancelTimeout?: Duration.DurationInput | undefined
  /** `lock_timeout` of every session. Default: the server's. */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /** `idle_in_transaction_session_timeout` of every session. Default: 10 minutes. */
  readonly idleInTransactionTimeout?: Duration.DurationInput | undefined
  /** TCP keepalive. Default: on. */
  readonly keepAlive?: boolean | undefined
  /** Idle time before the first keepalive probe. Default: 30 seconds. */
  readonly keepAliveInitialDelay?: Duration.DurationInput | undefined
  /** Type parsers passed to `pg`. Default: `pg`'s. */
  readonly types?: TypeParsers | undefined

  /**
   * Prepare each distinct parameterised statement once per connection and reuse it. Saves the
   * server a parse per statement; leave it off behind PgBouncer in transaction mode. After a
   * schema change alters a prepared statement's result columns, its next run fails once per
   * connection with SQLSTATE 0A000 and that connection is retired. Default: false (as
   * `@effect/sql-pg`).
   */
  readonly prepare?: boolean | undefined
  /**
   * What a returned connection gets reset to besides its transaction (see
   * `PgConnection.SessionReset`): `"auto"` resets only what the lease's statements changed,
   * as their command tags say (a clean lease costs nothing); `"always"` runs `DISCARD ALL`;
   * `"transaction-only"` leaves session state as it is; `{ sql }` runs that SQL. Default: `"auto"`.
   */
  readonly reset?: SessionReset | undefined
  /**
   * Statements run on every new connection before its first lease (`SET search_path TO app`),
   * and again after a reset that reset settings. A failing one fails the connection attempt.
   */
  readonly onConnect?: ReadonlyArray<string> | undefined
  /** Prepared statements kept per connection with `prepare` (LRU). Default: 100. */
  readonly statementCacheSize?: number | undefined
  /**
   * Statement pipelining. When no connection is idle and the pool is at `max`, a statement run
   * outside a transaction is written on a busy connection behind the statements already there
   * (one Sync each, so each succeeds or fails on its own) instead of waiting for a connection
   * to be returned. Transactions, `reserve`, streams, COPY and LISTEN always get a connection
   * alone, and a connection whose head statement is slow (`pipelineSlowHead`) or that is being
   * cancelled takes no more. A cancel stays exact: a timed-out statement not yet written is
   * dropped, one written is cancelled when it reaches the head, and a statement hit by a cancel
   * meant for another runs again. One caution: session state one statement changes (`SET`
   * without `LOCAL`) is seen by the statements pipelined after it on that connection until the
   * reset at its return — change session state in a transaction or a `reserve`d connection.
   * Default: true.
   */
  readonly pipeline?: boolean | undefined
  /** Most statements pipelined on one connection at once, the first included. An integer >= 2. Default: 8. */
  readonly pipelineDepth?: number | undefined
  /**
   * A connection whose head statement has run this long takes no more pipelined statements,
   * so that one slow statement does not hold up others. Default: 10 milliseconds.
   */
  readonly pipelineSlowHead?: Duration.DurationInput | undefined
  /** As `@effect/sql-pg`: name transforms, JSON transforms, span attributes. */
  readonly transformResultNames?: ((str: string) => string) | undefined
  readonly transformQueryNames?: ((str: string) => string) | undefined
  readonly transformJson?: boolean | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined

  /**
   * Which environment variable set each option, by option name (`{ url: "DATABASE_URL",
   * host: "PGHOST" }`); set by `fromEnv`. Messages name them, and a value from a `PG*`
   * variable yields to the URL (as in libpq) instead of conflicting with it.
   */
  readonly sources?: Readonly<Record<string, string>> | undefined
}

/**
 * The connection options resolved from a `PgPoolOptions`, with the safety-net
 * `statement_timeout` derived from `queryTimeout`, and the pool's name.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedConnection {
  readonly connection: PgConnectionOptions
  readonly name: string
  /** The pool's sizes and lifetime, whichever spelling gave them. */
  readonly pool: {
    readonly min: number | undefined
    readonly max: number | undefined
    readonly maxLifetime: Duration.DurationInput | undefined
  }
  /** What `PgClient.layer` would put in its `config`: the options as given, filled from the URL. */
  readonly clientConfig: PgClient.PgClientConfig
  /** The full connection identity (user, host, port, database, name), for the duplicate-pool warning. */
  readonly identity: string
  /** The connection settings nobody gave, whose defaults are used. */
  readonly defaulted: ReadonlyArray<DefaultedSetting>
  /** Whether the layer skips connecting while it is built. */
  readonly lazy: boolean
  /** Pipelining, when on: most statements per connection, and the head's run time past which a connection takes no more. */
  readonly pipeline: { readonly depth: number; readonly slowHeadMillis: number } | undefined
}

/**
 * The defaults of the connection settings and of the safety nets. `database` is used only when
 * no user is given either: the database defaults to the user's name, as in libpq.
 *
 * @since 0.1.0
 * @category config
 */
export const defaults: {
  readonly host: "localhost"
  readonly port: 5432
  readonly database: "postgres"
  readonly username: "postgres"
  readonly applicationName: "scoped-pool"
  readonly queryTimeout: Duration.Duration
  readonly idleInTransactionTimeout: Duration.Duration
  readonly pipeline: true
  readonly pipelineDepth: 8
  readonly pipelineSlowHead: Duration.Duration
} = internal.defaults

/**
 * The server-side `statement_timeout` set as a safety net above the client's `queryTimeout`:
 * 10 % more, and at least one second more, so that the client's cancel always comes first.
 *
 * @since 0.1.0
 * @category config
 */
export const safetyNetFor: (queryTimeoutMillis: number) => number = internal.safetyNetFor

/**
 * The connection string with its password (and any other secret parameter) masked, for
 * messages; rebuilt from its parsed parts. A string that does not parse shows nothing but its
 * scheme.
 *
 * @since 0.1.0
 * @category getters
 */
export const maskUrl: (url: string) => string = internal.maskUrl

/**
 * Resolves the connection side of the options: parses the URL or connection string (a
 * malformed one, or an unknown parameter, fails with a `PoolConfigError` that never shows
 * the password), checks that spellings given twice agree, fills in defaults, and derives the
 * server's `statement_timeout` from `queryTimeout`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveConnection: (options: PgPoolOptions) => Effect.Effect<ResolvedConnection, PoolConfigError> =
  internal.resolve

/**
 * Reads the options from the environment: `DATABASE_URL`, and the libpq variables
 * (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGAPPNAME`, `PGSSLMODE`,
 * `PGCONNECT_TIMEOUT` in seconds) for what the URL does not say, plus the pool's `PGPOOL_MIN`,
 * `PGPOOL_MAX` and durations such as `PGPOOL_ACQUIRE_TIMEOUT="5 seconds"`,
 * `PGPOOL_QUERY_TIMEOUT`, `PGPOOL_IDLE_TIMEOUT`, `PGPOOL_MAX_LIFETIME`, `PGPOOL_CLOSE_TIMEOUT`,
 * `PGPOOL_LEAK_THRESHOLD`, `PGPOOL_LAZY=true`, `PGPOOL_PIPELINE=false` and `PGPOOL_PIPELINE_DEPTH`. A malformed value fails with a
 * `ConfigError` that names the variable and, for a duration, the accepted format.
 *
 * @since 0.1.0
 * @category config
 */
export const fromEnv: Config.Config<PgPoolOptions> = internal.fromEnv
