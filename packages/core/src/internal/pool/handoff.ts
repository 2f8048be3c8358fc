/**
 * Returns and hand-offs: a lease ends (after `reset`, when there is one), and the resource goes
 * to the oldest waiter, back to the idle stack, or out of the pool. Shared leases
 * (`useShared`): a caller joins a shared resource, a lease that ends makes room on it, and the
 * last one ends the resource's lease (its reset runs then, once).
 *
 * `reset` and `isAlive` are user code: a reset that throws, fails or dies retires the resource
 * ("reset-failed", with the cause logged), an `isAlive` that throws counts as dead. Either way
 * the lease ends: no resource is ever lost to a hook.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import { type Entry, isLeased, type Sharer } from "./entry.js"
import * as Hooks from "./hooks.js"
import * as Retirement from "./retirement.js"
import type { PoolState } from "./state.js"

/**
 * Hands an entry that is idle but not on the stack to the oldest waiter, or puts it on the
 * stack. A `useShared` waiter gets it as a shared lease, which the `useShared` waiters queued
 * right behind it join (see `fillShared`).
 *
 * @internal
 */
export const offer = <A, E>(state: PoolState<A, E>, entry: Entry<A>): void => {
  if (state.closed) return Retirement.retire(state, entry, "closed")
  const waiter = state.waiters.take()
  if (waiter === undefined) {
    state.idle.push(entry)
    return
  }
  state.waitersChanged()
  state.transition(entry, "leased", waiter.fiber)
  if (waiter.shared) waiter.sharer = state.beginShared(entry)
  waiter.entry = entry
  waiter.result = Effect.succeed(entry)
  waiter.resume?.(waiter.result)
  if (waiter.shared) fillShared(state, entry)
}

/**
 * Gives the `useShared` callers at the head of the queue leases on a shared entry, while it has
 * room (`maxHolders`) and takes more (`share.load`), when the pool is at `max` (else they get
 * resources of their own). Stops at the first exclusive waiter: the
 * queue stays FIFO, and an exclusive caller's turn comes when an entry is given back whole.
 *
 * @internal
 */
export const fillShared = <A, E>(state: PoolState<A, E>, entry: Entry<A>): void => {
  const max = state.options.shareMaxHolders
  const load = state.hooks.shareLoad
  if (max === undefined || load === undefined) return
  // While the pool can grow, the waiters get resources of their own; and as many waiters as
  // there are resources being created will get those.
  if (state.live.size + state.pending < state.max) return
  let served = false
  for (
    let head = state.waiters.peek();
    head !== undefined && head.shared && state.waiters.size > state.pending;
    head = state.waiters.peek()
  ) {
    const now = state.now()
    if (!hasRoom(state, entry, max, now) || Hooks.load(load, entry.value) === undefined) break
    state.waiters.take()
    served = true
    head.sharer = state.joinShared(entry, head.fiber, now)
    head.entry = entry
    head.result = Effect.succeed(entry)
    head.resume?.(head.result)
  }
  if (served) state.waitersChanged()
}

/**
 * A lease for a `useShared` caller on a shared entry, when none is idle, the pool is at `max`
 * (none being created) and nobody waits: the least loaded entry that has room and takes more. `undefined` when none
 * does (the caller waits).
 *
 * @internal
 */
export const join = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>,
  now: number
): Sharer<A> | undefined => {
  const max = state.options.shareMaxHolders
  const hook = state.hooks.shareLoad
  if (max === undefined || hook === undefined || state.waiters.size > 0) return undefined
  // Not while the pool can grow, nor while a resource is being created (nobody waits for it:
  // the caller waits for it instead, which is soon).
  if (state.pending > 0 || state.live.size < state.max) return undefined
  let best: Entry<A> | undefined
  let bestLoad = 0
  let bestCount = 0
  for (const entry of state.shared) {
    if (!hasRoom(state, entry, max, now)) continue
    const load = Hooks.load(hook, entry.value)
    if (load === undefined) continue
    const count = entry.sharers!.length
    if (best === undefined || load < bestLoad || (load === bestLoad && count < bestCount)) {
      best = entry
      bestLoad = load
      bestCount = count
    }
  }
  return best === undefined ? undefined : state.joinShared(best, fiber, now)
}

/**
 * Whether one more lease may join a shared entry, before asking its load: it is still shared and
 * not invalidated, has fewer than `maxHolders` leases, and would be leased if it were idle — not
 * expired nor dead (`isAlive`), and with a use left under `maxUses` once its current leases
 * (each one a use) end.
 */
const hasRoom = <A, E>(state: PoolState<A, E>, entry: Entry<A>, max: number, now: number): boolean => {
  const sharers = entry.sharers
  if (entry.state !== "leased" || sharers === undefined || sharers.length >= max) return false
  if (entry.uses + sharers.length >= state.options.maxUses) return false
  return Retirement.onCheckout(state, entry, now) === undefined
}

/**
 * Ends a shared lease. While others hold the entry, it only makes room (for the head of the
 * queue, see `fillShared`). The last one ends the entry's lease as an exclusive lease ends:
 * the returned effect is its reset and return (`undefined` when it was returned at once).
 *
 * @internal
 */
export const endShared = <A, E>(state: PoolState<A, E>, sharer: Sharer<A>): Effect.Effect<void> | undefined => {
  const entry = sharer.entry
  if (!state.leaveShared(sharer, state.now())) {
    fillShared(state, entry)
    return undefined
  }
  return end(state, entry)
}

/**
 * Ends a lease on `entry` (a whole one, or the last of its shared ones): the returned effect
 * resets and then returns it; `undefined` when it was returned at once (no reset to run).
 *
 * @internal
 */
export const end = <A, E>(state: PoolState<A, E>, entry: Entry<A>): Effect.Effect<void> | undefined => {
  const reset = resetOf(state, entry)
  if (reset !== undefined) return resetThenReturn(state, entry, reset)
  giveBack(state, entry, undefined)
  return undefined
}

/** The reset to run before `entry` is returned, or `undefined` when there is nothing to reset. @internal */
export const resetOf = <A, E>(state: PoolState<A, E>, entry: Entry<A>): Effect.Effect<unknown, unknown> | undefined =>
  state.hooks.reset === undefined ? undefined : Hooks.callOptional(state.hooks.reset, entry.value)

/** Ends a lease: resets the resource if needed, then returns it. A revoked lease ends with nothing to do. @internal */
export const release = <A, E>(state: PoolState<A, E>, entry: Entry<A>): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!isLeased(entry.state)) return Effect.void
    return end(state, entry) ?? Effect.void
  })

/** @internal */
export const resetThenReturn = <A, E>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  reset: Effect.Effect<unknown, unknown>
): Effect.Effect<void> =>
  Effect.matchCause(reset, {
    onFailure: (cause) => giveBack(state, entry, cause),
    onSuccess: () => giveBack(state, entry, undefined)
  })

/**
 * Ends a lease whose reset is done (`resetFailure` says how it failed): the entry goes to a
 * waiter or the idle stack, or is retired. Nothing happens to a lease revoked in the meantime.
 *
 * @internal
 */
export const giveBack = <A, E>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  resetFailure: Cause.Cause<unknown> | undefined
): void => {
  if (!isLeased(entry.state)) return
  if (resetFailure !== undefined) return Retirement.retire(state, entry, "reset-failed", resetFailure)
  if (entry.state === "invalidated") return Retirement.retire(state, entry, "invalidated")
  state.transition(entry, "idle")
  const why = Retirement.onReturn(state, entry, entry.lastUsedAt)
  if (why !== undefined) Retirement.retire(state, entry, why.reason, why.cause)
  else offer(state, entry)
}
