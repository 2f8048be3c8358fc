/**
 * Close: callers fail with `PoolClosed` at once, idle resources are released concurrently, the
 * pool's background fibers are interrupted all at once, leases still out after `closeTimeout`
 * are revoked (released under their holders), and close returns once every release and every
 * background fiber has ended — or `releaseTimeout` passed, which it logs.
 *
 * Close runs uninterruptibly, and its waits do not depend on the closing fiber being
 * interruptible: a close started by an interrupted fiber (the program under
 * `Effect.provide(layer)` interrupted, `runMain` on SIGTERM) still waits `closeTimeout` for the
 * leases to come back and revokes those that did not.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import { isLeased } from "./entry.js"
import * as Retirement from "./retirement.js"
import type { PoolState } from "./state.js"

/** Closes the pool. Idempotent; concurrent callers all wait for the one close. @internal */
export const close = <A, E>(state: PoolState<A, E>): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.closeDone !== undefined) return Deferred.await(state.closeDone)
    const done = Deferred.unsafeMake<void>(FiberId.none)
    state.closeDone = done
    return closeOnce(state).pipe(Effect.ensuring(Deferred.done(done, Exit.void)), Effect.uninterruptible)
  })

const closeOnce = <A, E>(state: PoolState<A, E>): Effect.Effect<void> =>
  Effect.withFiberRuntime((closer) => {
    state.closed = true
    const drained = Deferred.unsafeMake<void>(FiberId.none)
    state.drained = drained
    if (state.inUse === 0) Deferred.unsafeDone(drained, Exit.void)
    const waiters = state.waiters.takeAll()
    state.waitersChanged()
    for (const waiter of waiters) state.settle(waiter, state.closedError)
    const ready = state.readyWaiters
    state.readyWaiters = []
    for (const resume of ready) resume(state.closedError)
    for (const entry of state.idle.splice(0)) Retirement.retire(state, entry, "closed")
    // Creations, maintenance, the expirer: interrupted together, awaited below.
    const background = [...state.rt.background]
    for (const fiber of background) fiber.unsafeInterruptAsFork(closer.id())
    const { closeTimeout, releaseTimeout } = state.options
    return Effect.gen(function*() {
      const returned = state.inUse === 0 || (closeTimeout > 0 && (yield* within(closeTimeout, Deferred.await(drained))))
      if (!returned) yield* revokeLeases(state)
      const settled = yield* within(releaseTimeout, awaitAll(state))
      if (!settled) {
        yield* Effect.logWarning(
          `closed, but some resources were still being created or released after releaseTimeout ` +
            `(${releaseTimeout} ms): their acquire or finalizer does not end; close returns without them`
        ).pipe(Effect.annotateLogs({ pool: state.name }))
      }
      state.publish()
    })
  })

/**
 * Whether `effect` ends within `millis`. It runs interruptibly on its own (so the timeout can
 * end it), while the caller may stay uninterruptible, even with an interruption pending.
 */
const within = <A>(millis: number, effect: Effect.Effect<A>): Effect.Effect<boolean> =>
  Effect.map(Effect.timeoutOption(Effect.interruptible(effect), Duration.millis(millis)), Option.isSome)

/** Awaits every retirement and background fiber, those that start while it waits included. */
const awaitAll = <A, E>(state: PoolState<A, E>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const next = first(state.rt.retirements) ?? first(state.rt.background)
    return next === undefined ? Effect.void : Effect.zipRight(Fiber.await(next), awaitAll(state))
  })

const first = <X>(set: ReadonlySet<X>): X | undefined => {
  for (const x of set) return x
  return undefined
}

const revokeLeases = <A, E>(state: PoolState<A, E>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const leased = [...state.live].filter((entry) => isLeased(entry.state))
    // A shared resource is held by each of its leases (counted before revoke ends them).
    let leases = 0
    for (const entry of leased) leases += entry.sharers?.length ?? 1
    for (const entry of leased) Retirement.revoke(state, entry)
    if (leased.length === 0) return Effect.void
    return Effect.logWarning(
      `closed with ${leases} lease(s) still held after closeTimeout (${state.options.closeTimeout} ms); ` +
        "their resources were released under their holders"
    ).pipe(Effect.annotateLogs({ pool: state.name }))
  })
