/**
 * A PostgreSQL pool for Effect programs, and the layers that provide it as `PgPool`, as
 * `@effect/sql`'s `SqlClient` and as `@effect/sql-pg`'s `PgClient`, so that programs written
 * against those run unchanged.
 *
 * Every connection is a scoped resource of a `@scoped-pool/core` pool: a statement that times
 * out (`queryTimeout`) or is interrupted is cancelled on the server through a side socket,
 * which needs no free pool slot; a connection is returned only when its session is clean
 * (rolled back, or else destroyed); closing the layer's scope cancels what still runs and
 * closes every connection within `closeTimeout`. The pool belongs to the runtime that built it.
 *
 * Pool errors (`PoolTimeout`, `PoolClosed`, …) reach `SqlClient` users as an `SqlError` whose
 * `cause` is the pool error: tell them apart with `isPoolError(error.cause)`.
 *
 * Transactions are `@effect/sql`'s `withTransaction`, with three rules of their own: a COMMIT
 * that fails (a deferred constraint) is the caller's `SqlError`, not a defect; while a nested
 * transaction is open, the statements of sibling fibers wait for it to end (so that rolling
 * back its savepoint never undoes their work), at most `acquireTimeout`; and a fiber that
 * outlives its transaction gets an `SqlError` instead of the connection.
 *
 * Bulk loads and exports are `copyFrom` (a `Sink` of bytes) and `copyTo` (a `Stream` of bytes),
 * on the service and on the `PgClient` our layers provide; encoders and decoders of rows are
 * in `PgCopy`.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Pool from "@scoped-pool/core/Pool"
import { PoolConfigError, type PoolError } from "@scoped-pool/core/PoolError"
import * as PoolOptions from "@scoped-pool/core/PoolOptions"
import type * as PoolStats from "@scoped-pool/core/PoolStats"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as Connect from "./internal/connect.js"
import * as Connection from "./internal/connection.js"
import * as Copy from "./internal/copy.js"
import * as Listen from "./internal/listen.js"
import * as SqlPool from "./internal/sqlClient.js"
import type * as PgConnection from "./PgConnection.js"
import type * as PgCopy from "./PgCopy.js"
import { type DefaultedSetting, PgConnectError } from "./PgError.js"
import * as PgPoolConfig from "./PgPoolConfig.js"

/**
 * The identifier that marks a value as a `PgPool`.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~@scoped-pool/pg/PgPool" = "~@scoped-pool/pg/PgPool" as const

/**
 * The type of {@link TypeId}.
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The pool as a service.
 *
 * @since 0.1.0
 * @category tags
 */
export class PgPool extends Context.Tag("@scoped-pool/pg/PgPool")<PgPool, PgPool.Service>() {}

/**
 * The types of the {@link PgPool} service.
 *
 * @since 0.1.0
 */
export declare namespace PgPool {
  /**
   * What a pool offers: its name, the raw pool, the `SqlClient`, leases, stats and close.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /** The pool's name: its `application_name`. */
    readonly name: string
    /** The underlying pool of connections, for `Pool.use`, `Pool.stats`, `Pool.resize`… */
    readonly pool: Pool.Pool<PgConnection.PgConnection, PgConnectError>
    /** The `SqlClient` / `PgClient` over this pool, with `copyFrom` and `copyTo` (failing with `SqlError`). */
    readonly sql: PgClient.PgClient & PgCopy.Copy<SqlError>
    /** Runs `f` with a leased connection, returned clean when `f` ends. */
    readonly use: <A, E, R>(
      f: (connection: PgConnection.PgConnection) => Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | PgConnectError | PoolError, R>
    /**
     * `COPY … FROM STDIN` of the sink's input: completes with the number of rows loaded (from
     * the server's CommandComplete). See `PgCopy.Copy` for the rules, and `PgCopy` for encoders
     * of rows. @since 0.3.0
     */
    readonly copyFrom: PgCopy.Copy<PgCopy.CopyError>["copyFrom"]
    /**
     * `COPY … TO STDOUT` as a stream of byte chunks, each of whole rows. See `PgCopy.Copy`, and
     * `PgCopy` for decoders. @since 0.3.0
     */
    readonly copyTo: PgCopy.Copy<PgCopy.CopyError>["copyTo"]
    /** A snapshot of the pool's counters. */
    readonly stats: Effect.Effect<PoolStats.Stats>
    /** Closes the pool now rather than when its scope ends. */
    readonly close: Effect.Effect<void>
  }
}

/**
 * Options of {@link make}; see `PgPoolConfig.PgPoolOptions`.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = PgPoolConfig.PgPoolOptions

const ATTR_DB_SYSTEM_NAME = "db.system.name"
const ATTR_DB_NAMESPACE = "db.namespace"
const ATTR_SERVER_ADDRESS = "server.address"
const ATTR_SERVER_PORT = "server.port"

/**
 * Opens a pool whose life is the current scope. Options are checked first (a bad value fails
 * with `PoolConfigError`, naming the field, never showing a password); then one connection is
 * opened (unless `lazy`), so that a server that cannot be reached or refuses the login fails
 * here with its `PgConnectError`, as `PgClient.make` does; more are made in the background,
 * `min` of them at once.
 *
 * **Example** (A pool in a scope)
 *
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { PgPool } from "@scoped-pool/pg"
 *
 * const program = Effect.gen(function*() {
 *   const pg = yield* PgPool.make({ url: Redacted.make("postgres://app@localhost/app"), max: 5 })
 *   const rows = yield* pg.sql`SELECT 1 AS one`
 *   return rows
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<PgPool.Service, PoolConfigError | PgConnectError, Scope.Scope | Reactivity.Reactivity> =>
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
      Sink.unwrapScoped(
        Effect.map(
          Copy.acquire(pool),
          (conn): Sink.Sink<number, Uint8Array, never, PgCopy.CopyError> => Copy.copyFrom(conn, statement)
        )
      )
    const copyTo = (
      statement: string,
      copyOptions?: PgCopy.CopyToOptions
    ): Stream.Stream<Uint8Array, PgCopy.CopyError> => {
      const highWaterMark = copyOptions?.highWaterMark ?? Copy.defaultHighWaterMark
      if (!Number.isInteger(highWaterMark) || highWaterMark <= 0) {
        return Stream.die(new RangeError(`copyTo: highWaterMark must be a positive integer, got ${highWaterMark}`))
      }
      return Stream.unwrapScoped(Effect.map(Copy.acquire(pool), (conn) => Copy.copyTo(conn, statement, highWaterMark)))
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
    } satisfies PgPool.Service
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

/**
 * A layer that opens the pool with these options and provides `PgPool`, `SqlClient` and
 * `PgClient`; the pool closes when the layer's scope ends. It takes `@effect/sql-pg`'s
 * `PgClientConfig` as it is: `PgClient.layer(config)` → `PgPool.layer(config)`. Building it
 * fails with `PoolConfigError` on a bad option and, unless `lazy`, with `PgConnectError` when
 * the server cannot be reached or refuses the login.
 *
 * **Example** (Options in code)
 *
 * ```ts
 * import { SqlClient } from "@effect/sql"
 * import { Effect, Redacted } from "effect"
 * import { PgPool } from "@scoped-pool/pg"
 *
 * const PoolLive = PgPool.layer({
 *   url: Redacted.make("postgres://app@localhost/app"),
 *   max: 20,
 *   queryTimeout: "30 seconds"
 * })
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* sql<{ n: number }>`SELECT 1 AS n`
 * }).pipe(Effect.provide(PoolLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<PgPool | SqlClient.SqlClient | PgClient.PgClient, PoolConfigError | PgConnectError> =>
  Layer.scopedContext(
    Effect.map(make(options), (service) =>
      Context.make(PgPool, service).pipe(
        Context.add(SqlClient.SqlClient, service.sql),
        Context.add(PgClient.PgClient, service.sql)
      ))
  ).pipe(Layer.provide(Reactivity.layer))

/**
 * As {@link layer}, with the options read from `Config`.
 *
 * **Example** (Options from the environment, with a default)
 *
 * ```ts
 * import { Config } from "effect"
 * import { PgPool } from "@scoped-pool/pg"
 *
 * const PoolLive = PgPool.layerConfig({
 *   url: Config.redacted("APP_DATABASE_URL"),
 *   max: Config.integer("APP_POOL_MAX").pipe(Config.withDefault(10))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options> | Config.Config.Wrap<Options>
): Layer.Layer<
  PgPool | SqlClient.SqlClient | PgClient.PgClient,
  PoolConfigError | PgConnectError | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config as Config.Config.Wrap<Options>), layer))

/**
 * The pool configured from the environment (`PgPoolConfig.fromEnv`: `DATABASE_URL` or the
 * libpq `PG*` variables, plus `PGPOOL_*`).
 *
 * **Example** (An application)
 *
 * ```ts
 * import { SqlClient } from "@effect/sql"
 * import { Effect } from "effect"
 * import { PgPoolLive } from "@scoped-pool/pg"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* sql`SELECT now()`
 * })
 *
 * Effect.runPromise(Effect.provide(program, PgPoolLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const PgPoolLive: Layer.Layer<
  PgPool | SqlClient.SqlClient | PgClient.PgClient,
  PoolConfigError | PgConnectError | ConfigError.ConfigError
> = layerConfig(PgPoolConfig.fromEnv)
