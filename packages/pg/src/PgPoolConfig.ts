/**
 * The options of a PostgreSQL pool — where the server is, how long each thing may take, how
 * large the pool is — and `fromEnv`, which reads them from `DATABASE_URL` or the libpq `PG*`
 * variables plus `PGPOOL_*` for the pool. Passwords stay `Redacted` throughout.
 *
 * @since 0.1.0
 */
import { PoolConfigError } from "@scoped-pool/core/PoolError"
import * as PoolOptions from "@scoped-pool/core/PoolOptions"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Tls from "node:tls"
import type { PgConnection, PgConnectionOptions, TypeParsers } from "./PgConnection.js"
import type { PgConnectError } from "./PgError.js"

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
  /** `postgres://user:password@host:port/database?sslmode=…&application_name=…`; fields below override it. */
  readonly url?: Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly database?: string | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  /** `true`, or node TLS options. Default: from `sslmode` in the URL, else off. */
  readonly ssl?: boolean | Tls.ConnectionOptions | undefined
  /** The `application_name` of every connection; also the pool's name. Default: `"scoped-pool"`. */
  readonly applicationName?: string | undefined

  /** Bound on connecting (TCP, TLS, authentication). Default: 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * Bound on every statement, enforced by the client: on expiry the statement is cancelled on
   * the server. Default: 2 minutes. The server's `statement_timeout` is set a little above it
   * as the safety net for what no client can handle — the client killed with SIGKILL, or the
   * network lost — so a statement never runs on forever.
   */
  readonly queryTimeout?: Duration.DurationInput | undefined
  /** Bound on a cancel's confirmation by the server; past it the connection is destroyed. Default: 1 second. */
  readonly cancelTimeout?: Duration.DurationInput | undefined
  /** `lock_timeout` of every session. Default: the server's. */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /** `idle_in_transaction_session_timeout` of every session. Default: 10 minutes. */
  readonly idleInTransactionTimeout?: Duration.DurationInput | undefined
  /** TCP keepalive. Default: on, first probe after 30 seconds idle. */
  readonly keepAlive?: boolean | undefined
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
  /** As `@effect/sql-pg`: name transforms, JSON transforms, span attributes. */
  readonly transformResultNames?: ((str: string) => string) | undefined
  readonly transformQueryNames?: ((str: string) => string) | undefined
  readonly transformJson?: boolean | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
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
}

/**
 * @since 0.1.0
 * @category config
 */
export const defaults = {
  host: "localhost",
  port: 5432,
  database: "postgres",
  username: "postgres",
  applicationName: "scoped-pool",
  queryTimeout: Duration.minutes(2),
  idleInTransactionTimeout: Duration.minutes(10)
} as const

/**
 * The server-side `statement_timeout` set as a safety net above the client's `queryTimeout`:
 * 10 % more, and at least one second more, so that the client's cancel always comes first.
 *
 * @since 0.1.0
 * @category config
 */
export const safetyNetFor = (queryTimeoutMillis: number): number =>
  Math.ceil(queryTimeoutMillis + Math.max(1_000, queryTimeoutMillis * 0.1))

/**
 * The URL with its password masked, for messages.
 *
 * @since 0.1.0
 * @category getters
 */
export const maskUrl = (url: string): string => url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^/]*@/i, "$1***@")

const sslFromMode = (mode: string | null): boolean | Tls.ConnectionOptions | undefined => {
  switch (mode) {
    case null:
    case "disable":
    case "allow":
    case "prefer":
      return undefined
    case "require":
    case "no-verify":
      return { rejectUnauthorized: false }
    default:
      return true
  }
}

/**
 * Resolves the connection side of the options: parses the URL (a malformed one fails with a
 * `PoolConfigError` that never shows the password), fills in defaults, and derives the
 * server's `statement_timeout` from `queryTimeout`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveConnection = (options: PgPoolOptions): Effect.Effect<ResolvedConnection, PoolConfigError> =>
  Effect.suspend(() => {
    const name = options.applicationName ?? defaults.applicationName
    const fail = (field: string, value: unknown, expected: string) =>
      Effect.fail(new PoolConfigError({ pool: name, field, value, expected }))
    let fromUrl: {
      host?: string
      port?: number
      database?: string
      username?: string
      password?: Redacted.Redacted<string>
      ssl?: boolean | Tls.ConnectionOptions
      applicationName?: string
    } = {}
    if (options.url !== undefined) {
      const raw = Redacted.value(options.url)
      let url: URL
      try {
        url = new URL(raw)
      } catch {
        return fail("url", maskUrl(raw), "a URL like postgres://user:password@host:5432/database")
      }
      if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
        return fail("url", maskUrl(raw), "a postgres:// or postgresql:// URL")
      }
      const port = url.port === "" ? undefined : Number(url.port)
      const ssl = sslFromMode(url.searchParams.get("sslmode"))
      const appName = url.searchParams.get("application_name")
      fromUrl = {
        ...(url.hostname !== "" ? { host: decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, "$1") } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(url.pathname.length > 1 ? { database: decodeURIComponent(url.pathname.slice(1)) } : {}),
        ...(url.username !== "" ? { username: decodeURIComponent(url.username) } : {}),
        ...(url.password !== "" ? { password: Redacted.make(decodeURIComponent(url.password)) } : {}),
        ...(ssl !== undefined ? { ssl } : {}),
        ...(appName !== null ? { applicationName: appName } : {})
      }
    }
    const port = options.port ?? fromUrl.port ?? defaults.port
    if (!Number.isInteger(port) || port < 1 || port > 65_535) return fail("port", port, "an integer in [1, 65535]")

    const queryTimeout = PoolOptions.decodeMillis(options.queryTimeout ?? defaults.queryTimeout)
    if (Either.isLeft(queryTimeout)) return fail("queryTimeout", options.queryTimeout, queryTimeout.left)
    const durations: Array<[string, Duration.DurationInput | undefined]> = [
      ["connectTimeout", options.connectTimeout],
      ["cancelTimeout", options.cancelTimeout],
      ["lockTimeout", options.lockTimeout],
      ["idleInTransactionTimeout", options.idleInTransactionTimeout]
    ]
    for (const [field, value] of durations) {
      const decoded = value === undefined ? undefined : PoolOptions.decodeMillis(value)
      if (decoded !== undefined && Either.isLeft(decoded)) return fail(field, value, decoded.left)
    }
    const password = options.password ?? fromUrl.password
    const ssl = options.ssl ?? fromUrl.ssl
    const connection: PgConnectionOptions = {
      host: options.host ?? fromUrl.host ?? defaults.host,
      port,
      database: options.database ?? fromUrl.database ?? defaults.database,
      user: options.username ?? fromUrl.username ?? defaults.username,
      ...(password !== undefined ? { password } : {}),
      ...(ssl !== undefined ? { ssl } : {}),
      applicationName: options.applicationName ?? fromUrl.applicationName ?? defaults.applicationName,
      ...(options.connectTimeout !== undefined ? { connectTimeout: options.connectTimeout } : {}),
      ...(options.cancelTimeout !== undefined ? { cancelTimeout: options.cancelTimeout } : {}),
      ...(options.keepAlive !== undefined ? { keepAlive: options.keepAlive } : {}),
      ...(options.lockTimeout !== undefined ? { lockTimeout: options.lockTimeout } : {}),
      idleInTransactionTimeout: options.idleInTransactionTimeout ?? defaults.idleInTransactionTimeout,
      queryTimeout: Duration.millis(queryTimeout.right),
      statementTimeout: Duration.millis(safetyNetFor(queryTimeout.right)),
      ...(options.types !== undefined ? { types: options.types } : {})
    }
    return Effect.succeed({ connection, name: connection.applicationName! })
  })

const optional = <A>(config: Config.Config<A>) => Config.option(config).pipe(Config.map(Option.getOrUndefined))

/**
 * Reads the options from the environment: `DATABASE_URL`, else the libpq variables
 * (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGAPPNAME`, `PGSSLMODE`,
 * `PGCONNECT_TIMEOUT` in seconds), plus the pool's `PGPOOL_MIN`, `PGPOOL_MAX` and durations
 * such as `PGPOOL_ACQUIRE_TIMEOUT="5 seconds"`, `PGPOOL_QUERY_TIMEOUT`, `PGPOOL_IDLE_TIMEOUT`,
 * `PGPOOL_MAX_LIFETIME`, `PGPOOL_CLOSE_TIMEOUT`, `PGPOOL_LEAK_THRESHOLD`. A malformed value
 * fails with a `ConfigError` that names the variable.
 *
 * @since 0.1.0
 * @category config
 */
export const fromEnv: Config.Config<PgPoolOptions> = Config.all({
  url: optional(Config.redacted("DATABASE_URL")),
  host: optional(Config.string("PGHOST")),
  port: optional(Config.integer("PGPORT")),
  database: optional(Config.string("PGDATABASE")),
  username: optional(Config.string("PGUSER")),
  password: optional(Config.redacted("PGPASSWORD")),
  applicationName: optional(Config.string("PGAPPNAME")),
  sslmode: optional(Config.literal("disable", "allow", "prefer", "require", "verify-ca", "verify-full")("PGSSLMODE")),
  connectTimeoutSeconds: optional(Config.integer("PGCONNECT_TIMEOUT")),
  min: optional(Config.integer("PGPOOL_MIN")),
  max: optional(Config.integer("PGPOOL_MAX")),
  acquireTimeout: optional(Config.duration("PGPOOL_ACQUIRE_TIMEOUT")),
  queryTimeout: optional(Config.duration("PGPOOL_QUERY_TIMEOUT")),
  idleTimeout: optional(Config.duration("PGPOOL_IDLE_TIMEOUT")),
  maxLifetime: optional(Config.duration("PGPOOL_MAX_LIFETIME")),
  closeTimeout: optional(Config.duration("PGPOOL_CLOSE_TIMEOUT")),
  leakThreshold: optional(Config.duration("PGPOOL_LEAK_THRESHOLD"))
}).pipe(Config.map(({ connectTimeoutSeconds, sslmode, url, ...rest }): PgPoolOptions => {
  const ssl = sslmode !== undefined ? sslFromMode(sslmode) : undefined
  // A URL wins over the PG* variables for what it names, as in libpq.
  const fromVars = url === undefined ? rest : {
    ...rest,
    host: undefined,
    port: undefined,
    database: undefined,
    username: undefined,
    password: undefined
  }
  return {
    ...dropUndefined(fromVars),
    ...(url !== undefined ? { url } : {}),
    ...(ssl !== undefined ? { ssl } : {}),
    ...(connectTimeoutSeconds !== undefined ? { connectTimeout: Duration.seconds(connectTimeoutSeconds) } : {})
  }
}))

const dropUndefined = <A extends object>(a: A): A =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as A
