/**
 * A scoped pool of resources for Effect programs.
 *
 * Resources are created by a scoped `acquire` (the resource's finalizer is its release),
 * leased with {@link use} (the hot path: opens no Scope) or {@link get} (for the rest of a
 * scope), and returned, re-checked, aged and retired by the pool. Waiting is FIFO and bounded
 * (`acquireTimeout`, `maxWaiting`); creation failures are retried in the background, one
 * creation at a time, with backoff; closing — when the scope that made the pool ends, or by
 * {@link close} — fails new and waiting callers at once, releases idle resources concurrently
 * and force-releases leases still out after `closeTimeout`. A pool belongs to the runtime that
 * built it (see `RuntimeGuard`). psycopg_pool's and HikariCP's semantics are the reference.
 *
 * User code never runs unprotected: `f`, `acquire` and the hooks may throw, fail, die or hang.
 * A lease always ends (returned, or its resource retired with the reason logged); a check is
 * interruptible and bounded by the caller's `acquireTimeout`; a defect in `acquire` or
 * `onCreate` fails the waiters at once, as a defect; the pool's background work runs on fibers
 * it supervises, with the app's logger and tracer, and close waits for them, bounded.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { Pipeable } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/pool.js"
import type * as PoolError from "./PoolError.js"
import type * as PoolOptions from "./PoolOptions.js"
import type * as PoolStats from "./PoolStats.js"

/**
 * The identifier that marks a value as a `Pool`.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~@scoped-pool/core/Pool" = internal.TypeId

/**
 * The type of {@link TypeId}.
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A pool of resources of type `A` whose creation can fail with `E`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pool<in out A, out E = never> extends Pipeable {
  readonly [TypeId]: TypeId
  /** The pool's name, as in its options. */
  readonly name: string
  /** A lease held until the current scope closes. */
  readonly get: Effect.Effect<A, E | PoolError.PoolError, Scope.Scope>
  /** Runs `f` with a leased resource and returns it when `f` ends, however it ends. */
  use<B, E2, R2>(f: (a: A) => Effect.Effect<B, E2, R2>): Effect.Effect<B, E | E2 | PoolError.PoolError, R2>
}

/**
 * Options of {@link make}; see `PoolOptions` for every field, its default and its range.
 *
 * @since 0.1.0
 * @category models
 */
export type Options<A, E, R> = PoolOptions.Options<A, E, R>

/**
 * Makes a pool whose life is the current scope. Options are checked first: a value out of
 * range fails with `PoolConfigError`. The pool then prefills to `min` in the background.
 *
 * **Example** (A pool of fake connections)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Pool } from "@scoped-pool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* Pool.make({
 *     name: "fake",
 *     acquire: Effect.acquireRelease(Effect.succeed({ id: 1 }), () => Effect.log("released")),
 *     max: 4
 *   })
 *   return yield* Pool.use(pool, (connection) => Effect.succeed(connection.id))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <A, E, R>(
  options: Options<A, E, R>
) => Effect.Effect<Pool<A, E>, PoolError.PoolConfigError, Scope.Scope | Exclude<R, Scope.Scope>> = internal.make

/**
 * A lease held until the current scope closes, then returned to the pool.
 *
 * @since 0.1.0
 * @category combinators
 */
export const get: <A, E>(self: Pool<A, E>) => Effect.Effect<A, E | PoolError.PoolError, Scope.Scope> = internal.get

/**
 * Runs `f` with a leased resource and returns the resource when `f` ends (success, failure,
 * defect or interruption; an `f` that throws when called dies with what it threw). Opens no
 * Scope, so it is the cheapest way to lease. If the pool was closed under the holder
 * (`closeTimeout` passed), fails with `LeaseRevoked`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const use: {
  <A, B, E2, R2>(
    f: (a: A) => Effect.Effect<B, E2, R2>
  ): <E>(self: Pool<A, E>) => Effect.Effect<B, E | E2 | PoolError.PoolError, R2>
  <A, E, B, E2, R2>(
    self: Pool<A, E>,
    f: (a: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | PoolError.PoolError, R2>
} = internal.use

/**
 * As {@link use}, for work that may share its resource with other such work: with the pool's
 * `share` option (`PoolOptions.Share`), when no resource is idle, the pool is at `max` and no
 * caller waits, `f` runs on the least loaded resource already leased this way that has room
 * (`maxHolders`) and takes more (`share.load`), instead of waiting — never on one invalidated,
 * expired, dead (`isAlive`) or without a use left under `maxUses`. A shared resource is
 * returned — reset, retired or handed on — when its last lease ends; `invalidate` during its
 * leases retires it then. Waiting stays FIFO: a caller of `use` or `get` at the head of the
 * queue stops new leases from joining, so resources drain and it gets one whole. Each lease
 * counts as a use (`maxUses`), is measured on its own (`use_time`, leak detection, the holders
 * a `PoolTimeout` names), and fails with `LeaseRevoked` if close revoked it. Without `share`,
 * it is {@link use}.
 *
 * **When to Use**
 *
 * For work that a resource can serve for several callers at once, each on its own: statements
 * pipelined on one database connection, each with its own result. Work that holds the
 * resource's state across several steps (a transaction, a cursor) takes it alone, with
 * {@link use} or {@link get}.
 *
 * @since 0.2.0
 * @category combinators
 */
export const useShared: {
  <A, B, E2, R2>(
    f: (a: A) => Effect.Effect<B, E2, R2>
  ): <E>(self: Pool<A, E>) => Effect.Effect<B, E | E2 | PoolError.PoolError, R2>
  <A, E, B, E2, R2>(
    self: Pool<A, E>,
    f: (a: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | PoolError.PoolError, R2>
} = internal.useShared

/**
 * Marks a resource as unusable: retired at once if idle, else when its lease ends.
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidate: {
  <A>(resource: A): <E>(self: Pool<A, E>) => Effect.Effect<void>
  <A, E>(self: Pool<A, E>, resource: A): Effect.Effect<void>
} = internal.invalidate

/**
 * A snapshot of the pool's state and counters.
 *
 * @since 0.1.0
 * @category getters
 */
export const stats: <A, E>(self: Pool<A, E>) => Effect.Effect<PoolStats.Stats> = internal.stats

/**
 * Waits until the pool holds `min` resources (psycopg's `wait()`); fails with `PoolTimeout`
 * (with the last creation error as cause) after `timeout`, and with `PoolClosed` as soon as
 * the pool closes. Not a lease request: not counted in `stats.timeouts`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const waitReady: {
  (
    timeout: Duration.DurationInput
  ): <A, E>(self: Pool<A, E>) => Effect.Effect<void, PoolError.PoolTimeout | PoolError.PoolClosed>
  <A, E>(
    self: Pool<A, E>,
    timeout: Duration.DurationInput
  ): Effect.Effect<void, PoolError.PoolTimeout | PoolError.PoolClosed>
} = internal.waitReady

/**
 * Changes `min` and `max` at runtime. Growing starts creations at once; shrinking retires
 * idle resources at once and leased ones as they are returned.
 *
 * @since 0.1.0
 * @category combinators
 */
export const resize: {
  (
    sizes: { readonly min: number; readonly max: number }
  ): <A, E>(self: Pool<A, E>) => Effect.Effect<void, PoolError.PoolConfigError>
  <A, E>(
    self: Pool<A, E>,
    sizes: { readonly min: number; readonly max: number }
  ): Effect.Effect<void, PoolError.PoolConfigError>
} = internal.resize

/**
 * Retires every resource — idle ones at once, leased ones when returned — and refills to
 * `min` with new ones; the pool stays open. Use it after a failover or a credential change.
 *
 * @since 0.1.0
 * @category combinators
 */
export const drain: <A, E>(self: Pool<A, E>) => Effect.Effect<void> = internal.drain

/**
 * Closes the pool now rather than when its scope ends. Idempotent; concurrent calls all wait
 * for the one close. Returns within `closeTimeout` plus the resources' own finalizers, at most
 * `releaseTimeout` more. A close started by an interrupted fiber waits all the same.
 *
 * @since 0.1.0
 * @category combinators
 */
export const close: <A, E>(self: Pool<A, E>) => Effect.Effect<void> = internal.close

/**
 * Whether `u` is a pool.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isPool: (u: unknown) => u is Pool<unknown, unknown> = internal.isPool
