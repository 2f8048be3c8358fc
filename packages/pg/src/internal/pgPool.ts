/**
 * `PgPool.make`: the pool of connections, the LISTEN session and the `SqlClient`/`PgClient`
 * over them, wired from the resolved options. See `PgPool` for what each part guarantees.
 *
 * @internal
 */
import type * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Pool from "@scoped-pool/core/Pool"
import { PoolConfigError } from "@scoped-pool/core/PoolError"
import * as PoolOptions from "@scoped-pool/core/PoolOptions"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import type * as PgConnection from "../PgConnection.js"
import type * as PgCopy from "../PgCopy.js"
import { type DefaultedSetting, PgConnectError } from "../PgError.js"
import type * as PgPool from "../PgPool.js"
import * as PgPoolConfig from "../PgPoolConfig.js"
import * as Connect from "./connect.js"
import * as Connection from "./connection.js"
import * as Copy from "./copy.js"
import * as Listen from "./listen.js"
import * as SqlPool from "./sqlClient.js"

/** @internal */
export const TypeId: "~@scoped-pool/pg/PgPool" = "~@scoped-pool/pg/PgPool" as const

type Options = PgPoolConfig.PgPoolOptions

const ATTR_DB_SYSTEM_NAME = "db.system.name"
const ATTR_DB_NAMESPACE = "db.namespace"
const ATTR_SERVER_ADDRESS = "server.address"
const ATTR_SERVER_PORT = "server.port"

/** @internal */
export const make = (
  options: Options = {}
): Effect.Effect<PgPool.PgPool.Service, PoolConfigError | PgConnectError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const resolved = yield* PgPoolConfig.resolveConnection(options)
    const connection = resolved.connection
    const resetMode = options.reset ?? "auto"
    // Connection options are checked once, here: every connection then connects with them.
    const connectOptions = yield* Connect.resolve(connection)
    const listenOptions = yield* Connect.resolve({
      ...connection,
      applicationName: `${connection.applicationName}-listen`
    })
    const pool = yield* Pool.make({
      name: resolved.name,
      identity: resolved.identity,
      acquire: withDefaults(Connection.connect(connectOptions), resolved.defaulted),
      min: resolved.pool.min,
      max: resolved.pool.max,
      acquireTimeout: options.acquireTimeout,
      maxWaiting: options.maxWaiting,
      idleTimeout: options.idleTimeout,
      maxLifetime: resolved.pool.maxLifetime,
      lifetimeJitter: options.lifetimeJitter,
      maxUses: options.maxUses,
      checkAfterIdle: options.checkAfterIdle,
      reconnectTimeout: options.reconnectTimeout,
      closeTimeout: options.closeTimeout,
      leakThreshold: options.leakThreshold,
      retrySchedule: options.retrySchedule,
      minRetryDelay: options.minRetryDelay,
      releaseTimeout: options.releaseTimeout,
      isAlive: (conn) => conn.isAlive,
      // Pipelining: a busy connection takes more statements while its head is quick; the least
      // loaded first. A slow head, a cancel in progress or a closing session takes none.
      share: pipelineShare(resolved.pipeline),
      // Waiting will not fix these, nor an unreachable server while no connection is open at all:
      // callers fail at once (within connectTimeout); creation still retries in the background.
      failFast: (error, { size }) =>
        error.reason === "Authentication" || error.reason === "UnknownDatabase" || error.reason === "Tls" ||
        // not a PostgreSQL server, or a session it refuses to set up (a failing onConnect statement)
        error.reason === "Protocol" ||
        (size === 0 && (error.reason === "Unreachable" || error.reason === "Timeout")),
      check: (conn) => conn.query("SELECT 1", []),
      // Never returned dirty: a session left in a transaction is rolled back, session state a
      // lease changed is reset (per `reset`), both bounded; else the connection is destroyed.
      reset: (conn) =>
        conn.resetNeeded(resetMode)
          ? Effect.flatMap(conn.reset(resetMode), (clean) => clean ? Effect.void : Effect.fail("dirty"))
          : undefined // clean: returned at once, no effect on the hot path
    })

    const compiler = PgClient.makeCompiler(options.transformQueryNames, options.transformJson)
    const transformRows = options.transformResultNames
      ? Statement.defaultTransforms(options.transformResultNames, options.transformJson).array
      : undefined
    const listener = yield* Listen.make(
      withDefaults(
        Connection.connect(listenOptions),
        resolved.defaulted
      )
    )

    const client = yield* SqlPool.make({
      pool,
      prepare: options.prepare ?? false,
      pipeline: resolved.pipeline !== undefined,
      streamChunkSize: 128,
      // A turn on a transaction's connection is bounded like a lease of the pool.
      turnTimeout: Duration.toMillis(options.acquireTimeout ?? PoolOptions.defaults.acquireTimeout),
      compiler,
      spanAttributes: [
        ...(options.spanAttributes ? Object.entries(options.spanAttributes) : []),
        [ATTR_DB_SYSTEM_NAME, "postgresql"],
        [ATTR_DB_NAMESPACE, connection.database],
        [ATTR_SERVER_ADDRESS, connection.host],
        [ATTR_SERVER_PORT, connection.port ?? 5432]
      ],
      transformRows
    })
    // COPY: on the transaction's connection inside withTransaction, else on a lease of its own.
    const copyFrom = (statement: string): Sink.Sink<number, Uint8Array, never, PgCopy.CopyError> =>
      Copy.copyFrom(Copy.acquire(pool), statement)
    const copyTo = (
      statement: string,
      copyOptions?: PgCopy.CopyToOptions
    ): Stream.Stream<Uint8Array, PgCopy.CopyError> => {
      const highWaterMark = copyOptions?.highWaterMark ?? Copy.defaultHighWaterMark
      if (!Number.isInteger(highWaterMark) || highWaterMark <= 0) {
        return Stream.die(new RangeError(`copyTo: highWaterMark must be a positive integer, got ${highWaterMark}`))
      }
      const batch = Duration.decodeUnknown(copyOptions?.readBatch ?? Copy.defaultReadBatch)
      const batchMillis = Option.isSome(batch) ? Duration.toMillis(batch.value) : NaN
      if (!(batchMillis >= 0 && batchMillis < 2 ** 31)) {
        return Stream.die(
          new RangeError(
            `copyTo: readBatch must be a finite duration of 0 or more, got ${String(copyOptions?.readBatch)}`
          )
        )
      }
      return Copy.copyTo(Copy.acquire(pool), statement, highWaterMark, batchMillis)
    }

    // What PgClient.layer puts there: the options as given, filled from the URL.
    const config: PgClient.PgClientConfig = resolved.clientConfig
    const sql = Object.assign(client, {
      [PgClient.TypeId]: PgClient.TypeId,
      config,
      json: (value: unknown) => Statement.custom<any>("PgJson")(value, undefined, undefined),
      listen: (channel: string): Stream.Stream<string, SqlError> => listener.listen(channel),
      notify: (channel: string, payload: string): Effect.Effect<void, SqlError> =>
        Effect.asVoid(client`SELECT pg_notify(${channel}, ${payload})`),
      copyFrom: (statement: string) => Sink.mapError(copyFrom(statement), (error) => SqlPool.toSqlError(error)),
      copyTo: (statement: string, copyOptions?: PgCopy.CopyToOptions) =>
        Stream.mapError(copyTo(statement, copyOptions), (error) => SqlPool.toSqlError(error))
    }) as PgClient.PgClient & PgCopy.Copy<SqlError>

    if (!resolved.lazy) yield* firstConnection(pool, connection)

    return {
      [TypeId]: TypeId,
      name: resolved.name,
      pool,
      sql,
      use: (f) => pool.use(f),
      copyFrom,
      copyTo,
      stats: Pool.stats(pool),
      close: Pool.close(pool)
    } satisfies PgPool.PgPool.Service
  }).pipe(Effect.mapError((error) => error._tag === "PoolConfigError" ? namedAsGiven(error, options) : error))

/** How a connection takes pipelined statements (`PoolOptions.share`); `undefined` when pipelining is off. */
const pipelineShare = (
  pipeline: PgPoolConfig.ResolvedConnection["pipeline"]
): PoolOptions.Share<PgConnection.PgConnection> | undefined => {
  if (pipeline === undefined) return undefined
  const slowHead = pipeline.slowHeadMillis
  return {
    maxHolders: pipeline.depth,
    load: (conn) => {
      const state = conn.state
      if (state !== "busy" && state !== "idle") return undefined
      return conn.headRunningMillis >= slowHead ? undefined : conn.queueDepth
    }
  }
}

/**
 * The pool's own option errors name the option as the user gave it: the environment variable
 * (`PGPOOL_MAX`) or `@effect/sql-pg`'s spelling (`maxConnections`).
 */
const namedAsGiven = (error: PoolConfigError, options: Options): PoolConfigError => {
  const aliases: Record<string, keyof Options> = { max: "maxConnections", min: "minConnections" }
  const alias = aliases[error.field]
  const given = options.sources?.[error.field] ??
    (alias !== undefined && options[error.field as keyof Options] === undefined && options[alias] !== undefined
      ? alias
      : undefined)
  return given === undefined
    ? error
    : new PoolConfigError({ pool: error.pool, field: given, value: error.value, expected: error.expected })
}

/** Connect errors name the connection settings that nobody gave and were defaults. */
const withDefaults = <A, R>(
  connect: Effect.Effect<A, PgConnectError, R>,
  defaulted: ReadonlyArray<DefaultedSetting>
): Effect.Effect<A, PgConnectError, R> =>
  defaulted.length === 0 ?
    connect :
    Effect.mapError(connect, (error) =>
      error.defaults !== undefined ? error : new PgConnectError({
        reason: error.reason,
        host: error.host,
        port: error.port,
        database: error.database,
        user: error.user,
        defaults: defaulted,
        cause: error.cause
      }))

/**
 * Opens the pool's first connection while the layer is built (and returns it to the pool), so
 * that a server that cannot be reached or refuses the login fails the build with the
 * `PgConnectError`, not the first statement. Bounded by `connectTimeout` for the failures that
 * waiting cannot fix, else by `acquireTimeout` (a server at `max_connections` may free a slot).
 */
const firstConnection = (
  pool: Pool.Pool<PgConnection.PgConnection, PgConnectError>,
  connection: PgConnection.PgConnectionOptions
): Effect.Effect<void, PgConnectError> =>
  Effect.catchAll(pool.use(() => Effect.void), (error) => {
    if (error._tag === "PgConnectError") return Effect.fail(error)
    if (error._tag === "PoolTimeout" && error.cause instanceof PgConnectError) return Effect.fail(error.cause)
    return Effect.fail(
      new PgConnectError({
        reason: "Timeout",
        host: connection.host,
        port: connection.port ?? 5432,
        database: connection.database,
        user: connection.user,
        cause: error
      })
    )
  })
