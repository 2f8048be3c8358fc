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
import type * as Pool from "@scoped-pool/core/Pool"
import type { PoolConfigError } from "@scoped-pool/core/PoolError"
import { type PoolError } from "@scoped-pool/core/PoolError"
import type * as PoolStats from "@scoped-pool/core/PoolStats"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/pgPool.js"
import type * as PgConnection from "./PgConnection.js"
import type * as PgCopy from "./PgCopy.js"
import type { PgConnectError } from "./PgError.js"
import * as PgPoolConfig from "./PgPoolConfig.js"

/**
 * The identifier that marks a value as a `PgPool`.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~@scoped-pool/pg/PgPool" = internal.TypeId

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
export const make: (
  options?: Options
) => Effect.Effect<PgPool.Service, PoolConfigError | PgConnectError, Scope.Scope | Reactivity.Reactivity> =
  internal.make

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
