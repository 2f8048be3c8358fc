/**
 * Opening a pool: options checked, user code bound to the caller's context, the pool tied to
 * its runtime, its background fibers (maintenance, the waiters' expirer) started on fiber sets
 * it supervises, its close registered with its scope and with the process's exit hook.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type * as PoolError from "../../PoolError.js"
import * as PoolOptions from "../../PoolOptions.js"
import * as RuntimeGuard from "../../RuntimeGuard.js"
import * as Diagnostics from "../diagnostics.js"
import * as ExitHook from "../exitHook.js"
import * as Lifetime from "../lifetime.js"
import { backgroundSleep } from "../timers.js"
import * as Checkout from "./checkout.js"
import * as Close from "./close.js"
import * as Growth from "./growth.js"
import type { Hooks } from "./hooks.js"
import { metricsOf } from "./metrics.js"
import * as Report from "./report.js"
import * as Retirement from "./retirement.js"
import { PoolState } from "./state.js"

/** Opens a pool whose life is the current scope; returns its state. @internal */
export const make = <A, E, R>(
  options: PoolOptions.Options<A, E, R>
): Effect.Effect<PoolState<A, E>, PoolError.PoolConfigError, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const resolved = yield* PoolOptions.resolve(options)
    // Without the pool's own Scope: each resource is acquired into a scope of its own.
    const context = Context.omit(Scope.Scope)(yield* Effect.context<Exclude<R, Scope.Scope>>()) as Context.Context<
      Exclude<R, Scope.Scope>
    >
    const provide = <X, Y>(effect: Effect.Effect<X, Y, any>) => Effect.provide(effect, context) as Effect.Effect<X, Y>
    const { onCreate, onReconnectFailed } = options
    const hooks: Hooks<A, E> = {
      acquire: provide(options.acquire) as Effect.Effect<A, E, Scope.Scope>,
      check: options.check,
      reset: options.reset,
      isAlive: options.isAlive,
      failFast: options.failFast,
      shareLoad: options.share?.load,
      onCreate: onCreate === undefined ? undefined : (a) => Effect.suspend(() => provide(onCreate(a))),
      onReconnectFailed: onReconnectFailed === undefined
        ? undefined
        : (e) => Effect.suspend(() => provide(onReconnectFailed(e)))
    }
    const guard = yield* RuntimeGuard.make
    const clock = yield* Effect.clock
    // The pool's own runtime: its fibers log and trace as the app does. Close supervises them.
    const runtime = yield* Effect.runtime<never>()
    const background = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    const retirements = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    const state = new PoolState<A, E>(resolved, hooks, {
      clock,
      guard,
      background,
      retirements,
      runBackground: supervised(runtime, background),
      runRetirement: supervised(runtime, retirements),
      metrics: metricsOf(resolved.name)
    }, Growth.creation)
    yield* Effect.addFinalizer(() => Close.close(state))

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

    // A pool never closed by the time the process runs out of work: closed there, on the pool's
    // own runtime (the app's logger and tracer), by a fiber that is the close itself.
    const closeForgotten = Effect.zipRight(
      Effect.logWarning(
        `pool "${resolved.name}" was not closed before the process ran out of work; closing it now. ` +
          "Close it yourself: dispose the ManagedRuntime (await runtime.dispose()), or build it in a scope or " +
          "Layer that ends (Effect.scoped, Effect.provide)"
      ).pipe(Effect.annotateLogs({ pool: resolved.name })),
      Close.close(state)
    )
    const unregister = ExitHook.register(() => Runtime.runFork(runtime)(closeForgotten))
    yield* Effect.addFinalizer(() => Effect.sync(unregister))

    const interval = Lifetime.maintenanceInterval(resolved.idleTimeout, resolved.maxLifetime, resolved.leakThreshold)
    const maintain = Effect.sync(() => Retirement.maintain(state)).pipe(
      Effect.flatMap((leaks) => Effect.forEach(leaks, (leak) => Report.leakWarning(state, leak), { discard: true }))
    )
    state.rt.runBackground(Effect.forever(Effect.zipRight(backgroundSleep(clock, interval), maintain)))
    state.rt.runBackground(Checkout.expireWaiters(state))
    // Metrics are brought up to date every second, off the hot path.
    state.rt.runBackground(
      Effect.forever(Effect.zipRight(backgroundSleep(clock, 1_000), Effect.sync(() => state.publish())))
    )
    state.publish()
    state.grow()
    return state
  })

/**
 * Forks on `runtime` and keeps the fiber in `fibers` until it ends. Unlike a `FiberSet`, whose
 * finalizer awaits its fibers without a bound, nothing but close waits for these, and close
 * waits at most `releaseTimeout`.
 */
const supervised = (runtime: Runtime.Runtime<never>, fibers: Set<Fiber.RuntimeFiber<unknown, unknown>>) => {
  const run = Runtime.runFork(runtime)
  return (effect: Effect.Effect<unknown, unknown>): Fiber.RuntimeFiber<unknown, unknown> => {
    const fiber = run(effect)
    fibers.add(fiber)
    fiber.addObserver(() => fibers.delete(fiber))
    return fiber
  }
}
