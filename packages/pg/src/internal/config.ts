/**
 * Resolution of `PgPoolOptions`: the connection string read by libpq's rules, merged with the
 * fields (two spellings of one setting must agree), defaults filled in and remembered, the
 * server-side safety nets derived, and `PgClient`'s `config` rebuilt.
 *
 * @internal
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import { PoolConfigError } from "@scoped-pool/core/PoolError"
import { decodeMillis } from "@scoped-pool/core/PoolOptions"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Path from "node:path"
import type * as Tls from "node:tls"
import type { PgConnectionOptions } from "../PgConnection.js"
import type { DefaultedSetting } from "../PgError.js"
import type { PgPoolOptions, ResolvedConnection } from "../PgPoolConfig.js"
import * as ConnString from "./connString.js"
import * as Libpq from "./libpq.js"

/** A duration in milliseconds by core's one validator, or `undefined` when it is not one. */
const millisOf = (value: unknown, options: { readonly allowZero: boolean }): number | undefined =>
  Either.getOrUndefined(decodeMillis(value, options))

/** @internal */
export const defaults = {
  host: "localhost",
  port: 5432,
  database: "postgres",
  username: "postgres",
  applicationName: "scoped-pool",
  queryTimeout: Duration.minutes(2),
  idleInTransactionTimeout: Duration.minutes(10),
  pipeline: true,
  pipelineDepth: 8,
  pipelineSlowHead: Duration.millis(10)
} as const

/** What every duration error shows: the format a duration is written in. @internal */
export const durationFormat = "a number and a unit, like \"5 seconds\" or \"500 millis\" (units: nanos, micros, " +
  "millis, seconds, minutes, hours, days, weeks)"

/** @internal */
export const safetyNetFor = (queryTimeoutMillis: number): number =>
  Math.ceil(queryTimeoutMillis + Math.max(1_000, queryTimeoutMillis * 0.1))

/** @internal */
export const maskUrl = (url: string): string => {
  const parsed = ConnString.parse(url)
  if (parsed._tag === "Ok") return parsed.value.masked
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)
  return scheme === null ? "***" : `${scheme[0]}***`
}

const secretValue = (value: Redacted.Redacted<string> | string | undefined) =>
  value === undefined ? undefined : Redacted.isRedacted(value) ? value : Redacted.make(value)

const same = (a: unknown, b: unknown): boolean => {
  if (Redacted.isRedacted(a) && Redacted.isRedacted(b)) return Redacted.value(a) === Redacted.value(b)
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    return JSON.stringify(a) === JSON.stringify(b)
  }
  return a === b
}

const show = (value: unknown): string =>
  Redacted.isRedacted(value) ? "not shown" : typeof value === "string" ? JSON.stringify(value) : String(value)

const unixSocket = (path: string): { readonly host: string; readonly port: number | undefined } => {
  const match = /^\.s\.PGSQL\.(\d+)$/.exec(Path.basename(path))
  return match === null ? { host: path, port: undefined } : { host: Path.dirname(path), port: Number(match[1]) }
}

/** @internal */
export const resolve = (options: PgPoolOptions): Effect.Effect<ResolvedConnection, PoolConfigError> =>
  Effect.suspend(() => {
    const sources = options.sources ?? {}
    let name = options.applicationName ?? defaults.applicationName
    const fail = (field: string, value: unknown, expected: string) =>
      Effect.fail(new PoolConfigError({ pool: name, field, value, expected }))
    const label = (field: string) => sources[field] ?? field
    // A PG* variable (not DATABASE_URL) set this field.
    const fromEnv = (field: string) => field !== "url" && sources[field] !== undefined

    // ---- the connection string ----
    const urlLabel = label("url")
    let url: Redacted.Redacted<string> | undefined
    let fromUrl: Libpq.Settings = {}
    let urlParsed: ConnString.Parsed | undefined
    if (options.url !== undefined) {
      if (!Redacted.isRedacted(options.url) && typeof options.url !== "string") {
        return fail(urlLabel, typeof options.url, "a string or a Redacted<string> (Redacted.make(\"postgres://…\"))")
      }
      url = secretValue(options.url)!
      const parsed = ConnString.parse(Redacted.value(url))
      if (parsed._tag === "Error") return fail(urlLabel, url, parsed.error.expected)
      urlParsed = parsed.value
      const settings = Libpq.settingsOf(parsed.value)
      if (settings._tag === "Error") {
        const e = settings.error
        return fail(
          e.param === undefined ? `a parameter of ${urlLabel}` : `${e.param} (in ${urlLabel})`,
          e.value,
          e.expected
        )
      }
      fromUrl = settings.value
    }
    const inUrl = (param: string) => `${param} in ${urlLabel}${urlParsed ? ` (${urlParsed.masked})` : ""}`

    // ---- a setting given by a field and by the URL: they must agree ----
    // A value from a PG* variable yields to the URL (as in libpq); any other must agree with it.
    type Picked<A> = { readonly value: A | undefined; readonly by: string | undefined }
    let conflict: Effect.Effect<never, PoolConfigError> | undefined
    const pick = <A>(field: string, given: A | undefined, urlParam: string, url: A | undefined): Picked<A> => {
      if (given === undefined) return { value: url, by: url === undefined ? undefined : urlLabel }
      if (url === undefined) return { value: given, by: label(field) }
      if (fromEnv(field)) return { value: url, by: urlLabel }
      if (!same(given, url)) {
        conflict ??= fail(
          label(field),
          Redacted.isRedacted(given) ? "(not shown)" : given,
          `the same as ${inUrl(urlParam)}, which says ${show(url)}; give it once`
        )
      }
      return { value: given, by: label(field) }
    }

    // `path` is another spelling of `host` (and of `port`, with a socket file's suffix).
    let hostGiven = options.host
    let portGiven = options.port
    if (options.path !== undefined) {
      const socket = unixSocket(options.path)
      if (options.host !== undefined && options.host !== socket.host) {
        return fail("path", options.path, `the same place as host (${JSON.stringify(options.host)}); give one of them`)
      }
      if (socket.port !== undefined && options.port !== undefined && options.port !== socket.port) {
        return fail("path", options.path, `a socket for port ${options.port} (the port option), or no port option`)
      }
      hostGiven = socket.host
      portGiven = options.port ?? socket.port
    }
    const host = pick("host", hostGiven, "host", fromUrl.host)
    const port = pick("port", portGiven, "port", fromUrl.port)
    const user = pick("username", options.username, "user", fromUrl.user)
    const database = pick("database", options.database, "dbname", fromUrl.database)
    const password = pick("password", secretValue(options.password), "password", fromUrl.password)
    const ssl = pick<boolean | Tls.ConnectionOptions>("ssl", options.ssl, "sslmode", fromUrl.ssl)
    const sslmode = pick("sslmode", options.sslmode, "sslmode", fromUrl.sslmode)
    const connectTimeout = pick(
      "connectTimeout",
      options.connectTimeout === undefined ? undefined : millisOf(options.connectTimeout, { allowZero: false }) ??
        Number.NaN,
      "connect_timeout",
      fromUrl.connectTimeout === undefined ? undefined : Duration.toMillis(fromUrl.connectTimeout)
    )
    const keepAlive = pick("keepAlive", options.keepAlive, "keepalives", fromUrl.keepAlive)
    const keepAliveInitialDelay = pick(
      "keepAliveInitialDelay",
      options.keepAliveInitialDelay === undefined ?
        undefined :
        millisOf(options.keepAliveInitialDelay, { allowZero: false }) ?? Number.NaN,
      "keepalives_idle",
      fromUrl.keepAliveInitialDelay === undefined ? undefined : Duration.toMillis(fromUrl.keepAliveInitialDelay)
    )

    // Server settings from the URL's `options`: the ones this pool also sets must agree.
    const startup: Record<string, string> = { ...fromUrl.startupParameters }
    const startupAppName = startup.application_name
    delete startup.application_name
    if (
      startupAppName !== undefined && fromUrl.applicationName !== undefined &&
      startupAppName !== fromUrl.applicationName
    ) {
      return fail(
        `options (in ${urlLabel})`,
        `-c application_name=${startupAppName}`,
        `the same as application_name in ${urlLabel} (${JSON.stringify(fromUrl.applicationName)}); give it once`
      )
    }
    const appName = pick(
      "applicationName",
      options.applicationName,
      "application_name",
      fromUrl.applicationName ?? startupAppName
    )
    if (conflict !== undefined) return conflict
    name = appName.value ?? fromUrl.fallbackApplicationName ?? defaults.applicationName

    const startupTimeout = (setting: string, field: string, given: Duration.DurationInput | undefined) => {
      const text = startup[setting]
      if (text === undefined || given === undefined) return undefined
      const ms = Libpq.pgMillis(text)
      if (ms !== undefined && ms === millisOf(given, { allowZero: true })) return undefined
      return fail(
        label(field),
        given,
        `the same as -c ${setting}=${text} in the options of ${urlLabel}, or left out (give it once)`
      )
    }
    const startupConflict = startupTimeout("lock_timeout", "lockTimeout", options.lockTimeout) ??
      startupTimeout(
        "idle_in_transaction_session_timeout",
        "idleInTransactionTimeout",
        options.idleInTransactionTimeout
      )
    if (startupConflict !== undefined) return startupConflict

    // ---- the pool's sizes and lifetime: two spellings each ----
    const sizes: Array<[string, number | undefined, string, number | undefined, number]> = [
      ["max", options.max, "maxConnections", options.maxConnections, 1],
      ["min", options.min, "minConnections", options.minConnections, 0]
    ]
    for (const [ours, value, theirs, alias, least] of sizes) {
      if (alias !== undefined && !(Number.isInteger(alias) && alias >= least)) {
        return fail(label(theirs), alias, `an integer >= ${least}`)
      }
      if (value !== undefined && alias !== undefined && value !== alias) {
        return fail(
          label(ours),
          value,
          `the same as ${label(theirs)} (${alias}), which names the same setting; give one`
        )
      }
    }
    if (options.connectionTTL !== undefined) {
      const ttl = millisOf(options.connectionTTL, { allowZero: false })
      if (ttl === undefined) {
        return fail(label("connectionTTL"), options.connectionTTL, `a finite duration > 0, ${durationFormat}`)
      }
      if (options.maxLifetime !== undefined && millisOf(options.maxLifetime, { allowZero: false }) !== ttl) {
        return fail(
          label("maxLifetime"),
          options.maxLifetime,
          `the same as connectionTTL (${Duration.format(Duration.millis(ttl))}), which names the same setting; give one`
        )
      }
    }

    // ---- bounds ----
    const portValue = port.value ?? defaults.port
    if (!Number.isInteger(portValue) || portValue < 1 || portValue > 65_535) {
      return fail(label("port"), portValue, "an integer in [1, 65535]")
    }
    const queryTimeout = millisOf(options.queryTimeout ?? defaults.queryTimeout, { allowZero: false })
    if (queryTimeout === undefined) {
      return fail(label("queryTimeout"), options.queryTimeout, `a finite duration > 0, ${durationFormat}`)
    }
    const durations: Array<[string, Duration.DurationInput | undefined]> = [
      ["connectTimeout", options.connectTimeout],
      ["cancelTimeout", options.cancelTimeout],
      ["lockTimeout", options.lockTimeout],
      ["idleInTransactionTimeout", options.idleInTransactionTimeout],
      ["keepAliveInitialDelay", options.keepAliveInitialDelay]
    ]
    for (const [field, value] of durations) {
      if (value !== undefined && millisOf(value, { allowZero: false }) === undefined) {
        return fail(label(field), value, `a finite duration > 0, ${durationFormat}`)
      }
    }
    const cacheSize = options.statementCacheSize
    if (cacheSize !== undefined && (!Number.isInteger(cacheSize) || cacheSize < 0)) {
      return fail(label("statementCacheSize"), cacheSize, "an integer >= 0")
    }
    if (options.pipeline !== undefined && typeof options.pipeline !== "boolean") {
      return fail(label("pipeline"), options.pipeline, "true or false")
    }
    const depth = options.pipelineDepth ?? defaults.pipelineDepth
    if (!Number.isInteger(depth) || depth < 2) {
      return fail(
        label("pipelineDepth"),
        options.pipelineDepth,
        "an integer >= 2 (turn pipelining off with pipeline: false)"
      )
    }
    const slowHead = millisOf(options.pipelineSlowHead ?? defaults.pipelineSlowHead, { allowZero: false })
    if (slowHead === undefined) {
      return fail(label("pipelineSlowHead"), options.pipelineSlowHead, `a finite duration > 0, ${durationFormat}`)
    }

    // ---- defaults, remembered for messages ----
    const defaulted: Array<DefaultedSetting> = []
    const env = options.sources !== undefined
    const remember = (field: string, value: string, variable: string, option: string) =>
      defaulted.push({ field, value, setWith: env ? ["DATABASE_URL", variable] : ["url", option] })
    if (host.value === undefined) remember("host", defaults.host, "PGHOST", "host")
    if (port.value === undefined) remember("port", String(defaults.port), "PGPORT", "port")
    const userValue = user.value ?? defaults.username
    if (user.value === undefined) remember("user", userValue, "PGUSER", "username")
    // As libpq: the database defaults to the user's name.
    const databaseValue = database.value ?? userValue
    if (database.value === undefined) remember("database", databaseValue, "PGDATABASE", "database")

    const hostValue = host.value ?? defaults.host
    const connection: PgConnectionOptions = {
      host: hostValue,
      port: portValue,
      database: databaseValue,
      user: userValue,
      ...(password.value !== undefined ? { password: password.value } : {}),
      ...(ssl.value !== undefined ? { ssl: ssl.value } : {}),
      ...(sslmode.value !== undefined ? { sslmode: sslmode.value } : {}),
      applicationName: name,
      ...(connectTimeout.value !== undefined ? { connectTimeout: Duration.millis(connectTimeout.value) } : {}),
      ...(options.cancelTimeout !== undefined ? { cancelTimeout: options.cancelTimeout } : {}),
      ...(keepAlive.value !== undefined ? { keepAlive: keepAlive.value } : {}),
      ...(keepAliveInitialDelay.value !== undefined ?
        { keepAliveInitialDelay: Duration.millis(keepAliveInitialDelay.value) } :
        {}),
      ...(options.lockTimeout !== undefined && startup.lock_timeout === undefined ?
        { lockTimeout: options.lockTimeout } :
        {}),
      ...(startup.idle_in_transaction_session_timeout === undefined ?
        { idleInTransactionTimeout: options.idleInTransactionTimeout ?? defaults.idleInTransactionTimeout } :
        {}),
      queryTimeout: Duration.millis(queryTimeout),
      // A statement_timeout in the URL's options is the user's own server-side bound.
      ...(startup.statement_timeout === undefined ?
        { statementTimeout: Duration.millis(safetyNetFor(queryTimeout)) } :
        {}),
      ...(Object.keys(startup).length > 0 ? { startupParameters: startup } : {}),
      ...(options.types !== undefined ? { types: options.types } : {}),
      ...(options.stream !== undefined ? { stream: options.stream } : {}),
      ...(options.onConnect !== undefined ? { onConnect: options.onConnect } : {}),
      ...(options.statementCacheSize !== undefined ? { statementCacheSize: options.statementCacheSize } : {})
    }

    // ---- what PgClient.layer would put in `config`: the options as given, filled from the URL ----
    const clientConfig: PgClient.PgClientConfig = dropUndefined({
      url,
      host: options.host ?? fromUrl.host,
      port: options.port ?? fromUrl.port,
      path: options.path,
      ssl: options.ssl,
      database: options.database ?? fromUrl.database,
      username: options.username ?? fromUrl.user,
      password: secretValue(options.password) ?? fromUrl.password,
      stream: options.stream,
      idleTimeout: options.idleTimeout,
      connectTimeout: options.connectTimeout,
      maxConnections: options.maxConnections ?? options.max,
      minConnections: options.minConnections ?? options.min,
      connectionTTL: options.connectionTTL ?? options.maxLifetime,
      applicationName: options.applicationName,
      spanAttributes: options.spanAttributes,
      transformResultNames: options.transformResultNames,
      transformQueryNames: options.transformQueryNames,
      transformJson: options.transformJson,
      types: options.types as PgClient.PgClientConfig["types"]
    })

    return Effect.succeed<ResolvedConnection>({
      connection,
      name,
      pool: {
        min: options.min ?? options.minConnections,
        max: options.max ?? options.maxConnections,
        maxLifetime: options.maxLifetime ?? options.connectionTTL
      },
      clientConfig,
      identity: `${name} ${userValue}@${hostValue}:${portValue}/${databaseValue}`,
      defaulted,
      lazy: options.lazy ?? false,
      pipeline: (options.pipeline ?? defaults.pipeline) ? { depth, slowHeadMillis: slowHead } : undefined
    })
  })

const dropUndefined = <A extends object>(a: A): A =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as A

const optional = <A>(config: Config.Config<A>) => Config.option(config).pipe(Config.map(Option.getOrUndefined))

/** A duration variable: a ConfigError that shows the format, on a value that is not one. */
const duration = (name: string): Config.Config<Duration.Duration> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      millisOf(text as Duration.DurationInput, { allowZero: true }) === undefined
        ? Either.left(ConfigError.InvalidData([], `Expected a duration, ${durationFormat}, but received ${text}`))
        : Either.right(Duration.decode(text as Duration.DurationInput))
    )
  )

const sslFromMode = (mode: string): boolean | Tls.ConnectionOptions =>
  mode === "disable" || mode === "allow" || mode === "prefer"
    ? false
    : mode === "require"
    ? { rejectUnauthorized: false }
    : mode === "verify-ca"
    ? { checkServerIdentity: () => undefined }
    : true

const variables = {
  url: "DATABASE_URL",
  host: "PGHOST",
  port: "PGPORT",
  database: "PGDATABASE",
  username: "PGUSER",
  password: "PGPASSWORD",
  applicationName: "PGAPPNAME",
  ssl: "PGSSLMODE",
  sslmode: "PGSSLMODE",
  connectTimeout: "PGCONNECT_TIMEOUT",
  min: "PGPOOL_MIN",
  max: "PGPOOL_MAX",
  acquireTimeout: "PGPOOL_ACQUIRE_TIMEOUT",
  queryTimeout: "PGPOOL_QUERY_TIMEOUT",
  idleTimeout: "PGPOOL_IDLE_TIMEOUT",
  maxLifetime: "PGPOOL_MAX_LIFETIME",
  closeTimeout: "PGPOOL_CLOSE_TIMEOUT",
  leakThreshold: "PGPOOL_LEAK_THRESHOLD",
  lazy: "PGPOOL_LAZY",
  pipeline: "PGPOOL_PIPELINE",
  pipelineDepth: "PGPOOL_PIPELINE_DEPTH"
} as const

/** @internal */
export const fromEnv: Config.Config<PgPoolOptions> = Config.all({
  url: optional(Config.redacted(variables.url)),
  host: optional(Config.string(variables.host)),
  port: optional(Config.integer(variables.port)),
  database: optional(Config.string(variables.database)),
  username: optional(Config.string(variables.username)),
  password: optional(Config.redacted(variables.password)),
  applicationName: optional(Config.string(variables.applicationName)),
  ssl: optional(
    Config.literal("disable", "allow", "prefer", "require", "verify-ca", "verify-full", "no-verify")(variables.ssl)
  ),
  connectTimeout: optional(Config.integer(variables.connectTimeout)),
  min: optional(Config.integer(variables.min)),
  max: optional(Config.integer(variables.max)),
  acquireTimeout: optional(duration(variables.acquireTimeout)),
  queryTimeout: optional(duration(variables.queryTimeout)),
  idleTimeout: optional(duration(variables.idleTimeout)),
  maxLifetime: optional(duration(variables.maxLifetime)),
  closeTimeout: optional(duration(variables.closeTimeout)),
  leakThreshold: optional(duration(variables.leakThreshold)),
  lazy: optional(Config.boolean(variables.lazy)),
  pipeline: optional(Config.boolean(variables.pipeline)),
  pipelineDepth: optional(Config.integer(variables.pipelineDepth))
}).pipe(Config.map(({ connectTimeout, ssl, ...rest }): PgPoolOptions => {
  const options: Record<string, unknown> = dropUndefined({
    ...rest,
    ssl: ssl === undefined ? undefined : sslFromMode(ssl),
    sslmode: ssl === undefined || ssl === "no-verify" ? undefined : ssl,
    // As libpq: seconds, and at least 2; 0 ("wait forever" in libpq) is rejected by the resolution.
    connectTimeout: connectTimeout === undefined
      ? undefined
      : Duration.seconds(connectTimeout <= 0 ? 0 : Math.max(2, connectTimeout))
  })
  const sources: Record<string, string> = {}
  for (const key of Object.keys(options)) sources[key] = variables[key as keyof typeof variables]
  return { ...options, sources } as PgPoolOptions
}))
