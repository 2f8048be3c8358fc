/**
 * Builds a `pg.Client` from our options and connects it, bounded by `connectTimeout`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Tls from "node:tls"
import pg from "pg"
import type * as PgConnection from "../PgConnection.js"
import { PgConnectError } from "../PgError.js"
import { renderStartupOptions } from "./libpq.js"
import { classifyConnectError } from "./sqlstate.js"

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
  readonly password: Redacted.Redacted<string> | undefined
  readonly ssl: boolean | Tls.ConnectionOptions
  readonly applicationName: string | undefined
  readonly connectTimeout: Duration.Duration
  readonly cancelTimeout: Duration.Duration
  readonly closeTimeout: Duration.Duration
  readonly keepAlive: boolean
  readonly keepAliveInitialDelay: Duration.Duration
  readonly queryTimeout: Duration.Duration | undefined
  readonly statementTimeout: Duration.Duration | undefined
  readonly lockTimeout: Duration.Duration | undefined
  readonly idleInTransactionTimeout: Duration.Duration | undefined
  readonly types: PgConnection.TypeParsers | undefined
  readonly startupParameters: Readonly<Record<string, string>> | undefined
  readonly stream: PgConnection.PgConnectionOptions["stream"]
}

/** @internal */
export const defaults = {
  port: 5432,
  connectTimeout: Duration.seconds(5),
  cancelTimeout: Duration.seconds(1),
  closeTimeout: Duration.seconds(1),
  keepAliveInitialDelay: Duration.seconds(30)
} as const

const positive = (field: string, input: Duration.DurationInput): Duration.Duration => {
  const duration = Duration.decode(input)
  const millis = Duration.toMillis(duration)
  if (!Number.isFinite(millis) || millis <= 0) {
    throw new RangeError(`PgConnection: ${field} must be a positive, finite duration, got ${Duration.format(duration)}`)
  }
  return duration
}

const optionalPositive = (
  field: string,
  input: Duration.DurationInput | undefined
): Duration.Duration | undefined => input === undefined ? undefined : positive(field, input)

/**
 * Applies defaults and validates; throws a `RangeError` naming the field on bad input
 * (the caller turns it into a defect: bad options are a bug, never clamped).
 *
 * @internal
 */
export const resolve = (options: PgConnection.PgConnectionOptions): Resolved => {
  const port = options.port ?? defaults.port
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new RangeError(`PgConnection: port must be an integer in 1..65535, got ${port}`)
  }
  return {
    host: options.host,
    port,
    database: options.database,
    user: options.user,
    password: options.password,
    ssl: options.ssl ?? false,
    applicationName: options.applicationName,
    connectTimeout: positive("connectTimeout", options.connectTimeout ?? defaults.connectTimeout),
    cancelTimeout: positive("cancelTimeout", options.cancelTimeout ?? defaults.cancelTimeout),
    closeTimeout: positive("closeTimeout", options.closeTimeout ?? defaults.closeTimeout),
    keepAlive: options.keepAlive ?? true,
    keepAliveInitialDelay: positive(
      "keepAliveInitialDelay",
      options.keepAliveInitialDelay ?? defaults.keepAliveInitialDelay
    ),
    queryTimeout: optionalPositive("queryTimeout", options.queryTimeout),
    statementTimeout: optionalPositive("statementTimeout", options.statementTimeout),
    lockTimeout: optionalPositive("lockTimeout", options.lockTimeout),
    idleInTransactionTimeout: optionalPositive("idleInTransactionTimeout", options.idleInTransactionTimeout),
    types: options.types,
    startupParameters: options.startupParameters,
    stream: options.stream
  }
}

const millis = (duration: Duration.Duration | undefined): number | undefined =>
  duration === undefined ? undefined : Math.max(1, Math.round(Duration.toMillis(duration)))

/**
 * Builds the client and attaches the `error` and `end` listeners before anything can fail,
 * so that a socket error is never an unhandled `error` event.
 *
 * @internal
 */
export const makeClient = (
  options: Resolved,
  onError: (error: Error) => void,
  onEnd: () => void
): pg.Client => {
  const config: pg.ClientConfig = {
    host: options.host,
    port: options.port,
    database: options.database,
    user: options.user,
    ssl: options.ssl,
    keepAlive: options.keepAlive,
    keepAliveInitialDelayMillis: millis(options.keepAliveInitialDelay)!
  }
  // The one place the password is unwrapped: pg keeps it non-enumerable on the client.
  if (options.password !== undefined) config.password = Redacted.value(options.password)
  if (options.applicationName !== undefined) config.application_name = options.applicationName
  if (options.statementTimeout !== undefined) config.statement_timeout = millis(options.statementTimeout)!
  if (options.lockTimeout !== undefined) config.lock_timeout = millis(options.lockTimeout)!
  if (options.idleInTransactionTimeout !== undefined) {
    config.idle_in_transaction_session_timeout = millis(options.idleInTransactionTimeout)!
  }
  if (options.types !== undefined) config.types = options.types as pg.CustomTypesConfig
  // pg sends `options` as a startup parameter, as libpq does; the server reads its -c settings.
  if (options.startupParameters !== undefined) config.options = renderStartupOptions(options.startupParameters)
  if (options.stream !== undefined) config.stream = options.stream
  const client = new pg.Client(config)
  client.on("error", onError)
  client.on("end", onEnd)
  return client
}

/** @internal */
export const setSocketRef = (client: pg.Client, keepAlive: boolean): void => {
  // pg's socket type is a Duplex; over TCP and TLS it is a net.Socket, which can be unref'd.
  const stream = client.connection.stream as { ref?: () => void; unref?: () => void }
  if (keepAlive) stream.ref?.()
  else stream.unref?.()
}

/** @internal */
export const destroySocket = (client: pg.Client): void => {
  const stream = client.connection.stream
  if (!stream.destroyed) stream.destroy()
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

const toConnectError = (options: Resolved, error: unknown): PgConnectError => {
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
 * Connects the client. On failure, timeout or interruption the socket is destroyed, so no
 * half-open connection is left behind.
 *
 * @internal
 */
export const connect = (client: pg.Client, options: Resolved): Effect.Effect<void, PgConnectError> =>
  Effect.async<void, PgConnectError>((resume) => {
    client.connect((error: Error | undefined) => {
      if (error) {
        destroySocket(client)
        resume(Effect.fail(toConnectError(options, error)))
      } else {
        resume(Effect.void)
      }
    })
    return Effect.sync(() => destroySocket(client))
  }).pipe(
    Effect.timeoutFail({
      duration: options.connectTimeout,
      onTimeout: () => connectError(options, "Timeout")
    })
  )
