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
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Pool from "@scoped-pool/core/Pool"
import type { PoolConfigError, PoolError } from "@scoped-pool/core/PoolError"
import type * as PoolStats from "@scoped-pool/core/PoolStats"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Listen from "./internal/listen.js"
import { PooledConnection, toSqlError, TransactionConnection } from "./internal/sqlClient.js"
import * as PgConnection from "./PgConnection.js"
import type { PgConnectError } from "./PgError.js"
import * as PgPoolConfig from "./PgPoolConfig.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~@scoped-pool/pg/PgPool" = "~@scoped-pool/pg/PgPool" as const

/**
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
 * @since 0.1.0
 */
export declare namespace PgPool {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /** The pool's name: its `application_name`. */
    readonly name: string
    /** The underlying pool of connections, for `Pool.use`, `Pool.stats`, `Pool.resize`… */
    readonly pool: Pool.Pool<PgConnection.PgConnection, PgConnectError>
    /** The `SqlClient` / `PgClient` over this pool. */
    readonly sql: PgClient.PgClient
    /** Runs `f` with a leased connection, returned clean when `f` ends. */
    readonly use: <A, E, R>(
      f: (connection: PgConnection.PgConnection) => Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | PgConnectError | PoolError, R>
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
 * with `PoolConfigError`, naming the field, never showing a password); connections are then
 * made in the background, `min` of them at once.
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
): Effect.Effect<PgPool.Service, PoolConfigError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const resolved = yield* PgPoolConfig.resolveConnection(options)
    const connection = resolved.connection
    const pool = yield* Pool.make({
      name: resolved.name,
      acquire: PgConnection.make(connection),
      min: options.min,
      max: options.max,
      acquireTimeout: options.acquireTimeout,
      maxWaiting: options.maxWaiting,
      idleTimeout: options.idleTimeout,
      maxLifetime: options.maxLifetime,
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
      // Waiting will not fix these, nor an unreachable server while no connection is open at all:
      // callers fail at once (within connectTimeout); creation still retries in the background.
      failFast: (error, { size }) =>
        error.reason === "Authentication" || error.reason === "UnknownDatabase" || error.reason === "Tls" ||
        (size === 0 && (error.reason === "Unreachable" || error.reason === "Timeout")),
      check: (conn) => conn.query("SELECT 1", []),
      // Never returned dirty: a session left in a transaction is rolled back (bounded) or destroyed.
      reset: (conn) =>
        conn.transactionStatus === "idle" && !conn.busy
          ? undefined // clean: returned at once, no effect on the hot path
          : Effect.flatMap(conn.rollbackIfDirty, (clean) => clean ? Effect.void : Effect.fail("dirty"))
    })

    const settings = {
      prepare: options.prepare ?? false,
      streamChunkSize: 128
    }
    const acquirer = Effect.succeed(new PooledConnection(pool, settings))
    const transactionAcquirer = Effect.flatMap(
      pool.get,
      (conn) => Effect.map(Effect.makeSemaphore(1), (mutex) => new TransactionConnection(conn, mutex, settings))
    )
    const compiler = PgClient.makeCompiler(options.transformQueryNames, options.transformJson)
    const transformRows = options.transformResultNames
      ? Statement.defaultTransforms(options.transformResultNames, options.transformJson).array
      : undefined
    const listener = yield* Listen.make(connection)

    const client = yield* SqlClient.make({
      acquirer,
      transactionAcquirer: Effect.mapError(transactionAcquirer, toSqlError),
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
    const config: PgClient.PgClientConfig = {
      host: connection.host,
      port: connection.port,
      database: connection.database,
      username: connection.user,
      password: connection.password,
      ssl: connection.ssl,
      applicationName: connection.applicationName,
      connectTimeout: connection.connectTimeout,
      maxConnections: options.max,
      minConnections: options.min,
      transformResultNames: options.transformResultNames,
      transformQueryNames: options.transformQueryNames,
      transformJson: options.transformJson,
      spanAttributes: options.spanAttributes
    }
    const sql: PgClient.PgClient = Object.assign(client, {
      [PgClient.TypeId]: PgClient.TypeId,
      config,
      json: (value: unknown) => Statement.custom<any>("PgJson")(value, undefined, undefined),
      listen: (channel: string): Stream.Stream<string, SqlError> => listener.listen(channel),
      notify: (channel: string, payload: string): Effect.Effect<void, SqlError> =>
        Effect.asVoid(client`SELECT pg_notify(${channel}, ${payload})`)
    }) as PgClient.PgClient

    return {
      [TypeId]: TypeId,
      name: resolved.name,
      pool,
      sql,
      use: (f) => pool.use(f),
      stats: Pool.stats(pool),
      close: Pool.close(pool)
    } satisfies PgPool.Service
  })

/**
 * A layer that opens the pool with these options and provides `PgPool`, `SqlClient` and
 * `PgClient`; the pool closes when the layer's scope ends.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<PgPool | SqlClient.SqlClient | PgClient.PgClient, PoolConfigError> =>
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
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options> | Config.Config.Wrap<Options>
): Layer.Layer<PgPool | SqlClient.SqlClient | PgClient.PgClient, PoolConfigError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config as Config.Config.Wrap<Options>), layer))

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
  PoolConfigError | ConfigError.ConfigError
> = layerConfig(PgPoolConfig.fromEnv)
