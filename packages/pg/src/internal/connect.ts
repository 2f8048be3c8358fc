/**
 * From `PgConnectionOptions` to a connected wire session: defaults applied and checked once,
 * the password unwrapped only when the server asks for it, and the connect bounded by
 * `connectTimeout` (the wire layer's own timer).
 *
 * @internal
 */
import { PoolConfigError } from "@scoped-pool/core/PoolError"
import { decodeMillis } from "@scoped-pool/core/PoolOptions"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type * as Tls from "node:tls"
import type * as PgConnection from "../PgConnection.js"
import { PgConnectError } from "../PgError.js"
import { classifyConnectError } from "./sqlstate.js"
import { type ConnectOptions, WireConnection } from "./wire/connection.js"
import type { Endpoint, SslMode } from "./wire/transport.js"

/**
 * Options with defaults applied and durations decoded once.
 *
 * @internal
 */
export interface Resolved {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly cancelTimeout: Duration.Duration
  readonly closeTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly queryTimeout: Duration.Duration | undefined
  readonly onConnect: ReadonlyArray<string>
  readonly wire: ConnectOptions
}

/** @internal */
export const defaults = {
  port: 5432,
  connectTimeout: Duration.seconds(5),
  cancelTimeout: Duration.seconds(1),
  closeTimeout: Duration.seconds(1),
  keepAliveInitialDelay: Duration.seconds(30),
  statementCacheSize: 100
} as const

/** A bad option: thrown inside `resolve` only, and turned into the typed error there. */
class BadOption {
  constructor(readonly field: string, readonly value: unknown, readonly expected: string) {}
}

/** A duration option by core's one validator (`PoolOptions.decodeMillis`). */
const positive = (field: string, input: Duration.DurationInput): Duration.Duration => {
  const decoded = decodeMillis(input)
  if (Either.isLeft(decoded)) throw new BadOption(field, input, decoded.left)
  return Duration.millis(decoded.right)
}

const optionalPositive = (
  field: string,
  input: Duration.DurationInput | undefined
): Duration.Duration | undefined => input === undefined ? undefined : positive(field, input)

const millis = (duration: Duration.Duration): number => Math.max(1, Math.round(Duration.toMillis(duration)))

/** libpq's sslmode from `sslmode`, else from pg's `ssl` option (`true` and TLS options verify, as node does). */
const sslModeOf = (options: PgConnection.PgConnectionOptions): SslMode => {
  if (options.sslmode !== undefined) return options.sslmode
  const ssl = options.ssl
  if (ssl === undefined || ssl === false) return "disable"
  if (ssl === true) return "verify-full"
  return ssl.rejectUnauthorized === false ? "require" : "verify-full"
}

/**
 * Applies defaults and validates: a value out of range fails with a `PoolConfigError` that
 * names the field and what it must be (options are never clamped).
 *
 * @internal
 */
export const resolve = (options: PgConnection.PgConnectionOptions): Effect.Effect<Resolved, PoolConfigError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(resolveOrThrow(options))
    } catch (error) {
      if (!(error instanceof BadOption)) throw error
      return Effect.fail(
        new PoolConfigError({
          pool: options.applicationName ?? "PgConnection",
          field: error.field,
          value: error.value,
          expected: error.expected
        })
      )
    }
  })

const resolveOrThrow = (options: PgConnection.PgConnectionOptions): Resolved => {
  const port = options.port ?? defaults.port
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new BadOption("port", port, "an integer in [1, 65535]")
  }
  const cacheSize = options.statementCacheSize ?? defaults.statementCacheSize
  if (!Number.isInteger(cacheSize) || cacheSize < 0) {
    throw new BadOption("statementCacheSize", cacheSize, "an integer >= 0")
  }
  const connectTimeout = positive("connectTimeout", options.connectTimeout ?? defaults.connectTimeout)
  const cancelTimeout = positive("cancelTimeout", options.cancelTimeout ?? defaults.cancelTimeout)
  const closeTimeout = positive("closeTimeout", options.closeTimeout ?? defaults.closeTimeout)
  const keepAliveInitialDelay = positive(
    "keepAliveInitialDelay",
    options.keepAliveInitialDelay ?? defaults.keepAliveInitialDelay
  )
  const queryTimeout = optionalPositive("queryTimeout", options.queryTimeout)
  const statementTimeout = optionalPositive("statementTimeout", options.statementTimeout)
  const lockTimeout = optionalPositive("lockTimeout", options.lockTimeout)
  const idleInTransactionTimeout = optionalPositive("idleInTransactionTimeout", options.idleInTransactionTimeout)

  const parameters: Array<readonly [string, string]> = []
  if (options.applicationName !== undefined) parameters.push(["application_name", options.applicationName])
  if (statementTimeout !== undefined) parameters.push(["statement_timeout", String(millis(statementTimeout))])
  if (lockTimeout !== undefined) parameters.push(["lock_timeout", String(millis(lockTimeout))])
  if (idleInTransactionTimeout !== undefined) {
    parameters.push(["idle_in_transaction_session_timeout", String(millis(idleInTransactionTimeout))])
  }
  // Settings from `startupParameters` (libpq's `options=-c …`), unless set by a field above.
  if (options.startupParameters !== undefined) {
    const set = new Set(parameters.map(([name]) => name))
    for (const [name, value] of Object.entries(options.startupParameters)) {
      if (!set.has(name)) parameters.push([name, value])
    }
  }
  const ssl = options.ssl
  const endpoint: Endpoint = {
    host: options.host,
    port,
    sslmode: sslModeOf(options),
    tls: typeof ssl === "object" ? ssl as Tls.ConnectionOptions : undefined,
    keepAlive: options.keepAlive ?? true,
    keepAliveInitialDelayMillis: millis(keepAliveInitialDelay),
    stream: options.stream
  }
  const password = options.password
  return {
    host: options.host,
    port,
    database: options.database,
    user: options.user,
    cancelTimeout,
    closeTimeout,
    connectTimeout,
    queryTimeout,
    onConnect: options.onConnect ?? [],
    wire: {
      endpoint,
      user: options.user,
      database: options.database,
      // The one place the password is unwrapped, when the server asks for it.
      password: password === undefined ? undefined : () => Redacted.value(password),
      parameters,
      protocol: options.protocol ?? "3.0",
      connectTimeoutMillis: millis(connectTimeout),
      cancelTimeoutMillis: millis(cancelTimeout),
      closeTimeoutMillis: millis(closeTimeout),
      queryTimeoutMillis: queryTimeout === undefined ? undefined : millis(queryTimeout),
      types: options.types,
      statementCacheSize: cacheSize
    }
  }
}

/** @internal */
export const connectError = (options: Resolved, reason: PgConnectError["reason"], cause?: unknown) =>
  new PgConnectError({
    reason,
    host: options.host,
    port: options.port,
    database: options.database,
    user: options.user,
    cause
  })

/** @internal */
export const toConnectError = (options: Resolved, error: unknown): PgConnectError => {
  const e = error as { readonly code?: unknown; readonly message?: unknown }
  return connectError(
    options,
    classifyConnectError(
      typeof e?.code === "string" ? e.code : undefined,
      typeof e?.message === "string" ? e.message : undefined
    ),
    error
  )
}

/**
 * Connects: transport, TLS per sslmode, startup and authentication, all within
 * `connectTimeout`. On failure, timeout or interruption nothing is left open.
 *
 * @internal
 */
export const connect = (
  options: Resolved,
  hooks: WireConnection["hooks"]
): Effect.Effect<WireConnection, PgConnectError> =>
  Effect.async<WireConnection, PgConnectError>((resume) => {
    const wire = new WireConnection(options.wire, hooks)
    wire.connect((error) => {
      if (error === undefined) resume(Effect.succeed(wire))
      else resume(Effect.fail(toConnectError(options, error)))
    })
    return Effect.sync(() => wire.destroy())
  })
