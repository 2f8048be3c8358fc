/**
 * A scoped pool of resources for Effect programs.
 *
 * Resources are created by a scoped `acquire` (the resource's finalizer is its release),
 * leased with {@link use} (the hot path: opens no Scope) or {@link get} (for the rest of a
 * scope), and returned, re-checked, aged and retired by the pool. Waiting is FIFO and bounded
 * (`acquireTimeout`, `maxWaiting`); creation failures are retried in the background with
 * backoff; closing — when the scope that made the pool ends, or by {@link close} — fails new
 * and waiting callers at once, releases idle resources concurrently and force-releases leases
 * still out after `closeTimeout`. A pool belongs to the runtime that built it (see
 * `RuntimeGuard`). psycopg_pool's and HikariCP's semantics are the reference.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import { dual } from "effect/Function"
import * as Metric from "effect/Metric"
import type { Pipeable } from "effect/Pipeable"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Diagnostics from "./internal/diagnostics.js"
import * as ExitHook from "./internal/exitHook.js"
import * as Lifetime from "./internal/lifetime.js"
import * as internal from "./internal/pool.js"
import { backgroundSleep } from "./internal/timers.js"
import type * as PoolError from "./PoolError.js"
import * as PoolOptions from "./PoolOptions.js"
import * as PoolStats from "./PoolStats.js"
import * as RuntimeGuard from "./RuntimeGuard.js"

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

const impl = <A, E>(self: Pool<A, E>): internal.PoolImpl<A, E> => self as unknown as internal.PoolImpl<A, E>

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
export const make = <A, E, R>(
  options: Options<A, E, R>
): Effect.Effect<Pool<A, E>, PoolError.PoolConfigError, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const resolved = yield* PoolOptions.resolve(options)
    // Without the pool's own Scope: each resource is acquired into a scope of its own.
    const context = Context.omit(Scope.Scope)(yield* Effect.context<Exclude<R, Scope.Scope>>()) as Context.Context<
      Exclude<R, Scope.Scope>
    >
    const guard = yield* RuntimeGuard.make
    const clock = yield* Effect.clock
    const retirements = yield* FiberSet.make<void, never>()
    const background = yield* FiberSet.make<unknown, unknown>()
    const tag = <T extends Metric.Metric<any, any, any>>(metric: T): T =>
      Metric.tagged(metric, "pool", resolved.name) as T
    const pool = new internal.PoolImpl<A, E>(resolved, {
      acquire: Effect.provide(options.acquire, context) as Effect.Effect<A, E, Scope.Scope>,
      check: options.check,
      reset: options.reset,
      isAlive: options.isAlive,
      failFast: options.failFast,
      onCreate: options.onCreate === undefined
        ? undefined
        : (a) => Effect.provide(options.onCreate!(a), context) as Effect.Effect<unknown, E>,
      onReconnectFailed: options.onReconnectFailed === undefined
        ? undefined
        : (e) => Effect.provide(options.onReconnectFailed!(e), context) as Effect.Effect<unknown>
    }, {
      clock,
      guard,
      background,
      retirements,
      runBackground: yield* FiberSet.runtime(background)<never>(),
      runRetirement: yield* FiberSet.runtime(retirements)<never>(),
      metrics: {
        size: tag(PoolStats.size),
        idle: tag(PoolStats.idle),
        inUse: tag(PoolStats.inUse),
        waiting: tag(PoolStats.waiting),
        acquireWait: tag(PoolStats.acquireWait),
        leaseDuration: tag(PoolStats.leaseDuration)
      }
    })
    // Added after the FiberSets, so it runs before their finalizers interrupt anything.
    yield* Effect.addFinalizer(() => pool.close)
    const identity = options.identity ?? resolved.name
    const duplicate = Diagnostics.opened(identity, resolved.name)
    if (duplicate !== undefined) yield* Effect.logWarning(duplicate).pipe(Effect.annotateLogs({ pool: resolved.name }))
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const churn = Diagnostics.closed(identity, resolved.name, clock.unsafeCurrentTimeMillis())
        return churn === undefined
          ? Effect.void
          : Effect.logWarning(churn).pipe(Effect.annotateLogs({ pool: resolved.name }))
      })
    )
    const runtime = yield* Effect.runtime<never>()
    const unregister = ExitHook.register(() =>
      Runtime.runFork(runtime)(
        Effect.zipRight(
          Effect.logWarning(
            `pool "${resolved.name}" was not closed before the process ran out of work; closing it now. ` +
              "Close it yourself: dispose the ManagedRuntime (await runtime.dispose()), or build it in a scope or " +
              "Layer that ends (Effect.scoped, Effect.provide)"
          ).pipe(Effect.annotateLogs({ pool: resolved.name })),
          pool.close
        )
      )
    )
    yield* Effect.addFinalizer(() => Effect.sync(unregister))
    const interval = Lifetime.maintenanceInterval(resolved.idleTimeout, resolved.maxLifetime, resolved.leakThreshold)
    const maintain = Effect.sync(() => pool.maintain()).pipe(
      Effect.flatMap((leaks) => Effect.forEach(leaks, (entry) => pool.leakWarning(entry), { discard: true }))
    )
    yield* FiberSet.run(background, Effect.forever(Effect.zipRight(backgroundSleep(clock, interval), maintain)))
    yield* FiberSet.run(background, pool.expireWaiters)
    pool.grow()
    return pool as unknown as Pool<A, E>
  })

/**
 * A lease held until the current scope closes, then returned to the pool.
 *
 * @since 0.1.0
 * @category combinators
 */
export const get = <A, E>(self: Pool<A, E>): Effect.Effect<A, E | PoolError.PoolError, Scope.Scope> => self.get

/**
 * Runs `f` with a leased resource and returns the resource when `f` ends (success, failure
 * or interruption). Opens no Scope, so it is the cheapest way to lease. If the pool was
 * closed under the holder (`closeTimeout` passed), fails with `LeaseRevoked`.
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
} = dual(2, <A, E, B, E2, R2>(self: Pool<A, E>, f: (a: A) => Effect.Effect<B, E2, R2>) => self.use(f))

/**
 * Marks a resource as unusable: retired at once if idle, else when its lease ends.
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidate: {
  <A>(resource: A): <E>(self: Pool<A, E>) => Effect.Effect<void>
  <A, E>(self: Pool<A, E>, resource: A): Effect.Effect<void>
} = dual(2, <A, E>(self: Pool<A, E>, resource: A) => Effect.sync(() => impl(self).invalidate(resource)))

/**
 * A snapshot of the pool's state and counters.
 *
 * @since 0.1.0
 * @category getters
 */
export const stats = <A, E>(self: Pool<A, E>): Effect.Effect<PoolStats.Stats> =>
  Effect.sync(() => {
    impl(self).updateGauges()
    return impl(self).stats()
  })

/**
 * Waits until the pool holds `min` resources (psycopg's `wait()`); fails with `PoolTimeout`
 * (with the last creation error as cause) after `timeout`.
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
} = dual(2, <A, E>(self: Pool<A, E>, timeout: Duration.DurationInput) => impl(self).waitReady(timeout))

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
} = dual(2, <A, E>(self: Pool<A, E>, sizes: { readonly min: number; readonly max: number }) =>
  Effect.flatMap(
    PoolOptions.resolve({ acquire: Effect.void, name: self.name, min: sizes.min, max: sizes.max }),
    (checked) => Effect.sync(() => impl(self).resize(checked.min, checked.max))
  ))

/**
 * Retires every resource — idle ones at once, leased ones when returned — and refills to
 * `min` with new ones; the pool stays open. Use it after a failover or a credential change.
 *
 * @since 0.1.0
 * @category combinators
 */
export const drain = <A, E>(self: Pool<A, E>): Effect.Effect<void> => Effect.sync(() => impl(self).drain())

/**
 * Closes the pool now rather than when its scope ends. Idempotent; concurrent calls all wait
 * for the one close. Returns within `closeTimeout` plus the resources' own finalizers.
 *
 * @since 0.1.0
 * @category combinators
 */
export const close = <A, E>(self: Pool<A, E>): Effect.Effect<void> => impl(self).close

/**
 * Whether `u` is a pool.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isPool = (u: unknown): u is Pool<unknown, unknown> => typeof u === "object" && u !== null && TypeId in u
