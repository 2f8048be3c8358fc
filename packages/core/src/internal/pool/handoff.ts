/**
 * Returns and hand-offs: a lease ends (after `reset`, when there is one), and the resource goes
 * to the oldest waiter, back to the idle stack, or out of the pool.
 *
 * `reset` and `isAlive` are user code: a reset that throws, fails or dies retires the resource
 * ("reset-failed", with the cause logged), an `isAlive` that throws counts as dead. Either way
 * the lease ends: no resource is ever lost to a hook.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { type Entry, isLeased } from "./entry.js"
import * as Hooks from "./hooks.js"
import * as Retirement from "./retirement.js"
import type { PoolState } from "./state.js"

/** Hands an entry that is idle but not on the stack to the oldest waiter, or puts it on the stack. @internal */
export const offer = <A, E>(state: PoolState<A, E>, entry: Entry<A>): void => {
  if (state.closed) return Retirement.retire(state, entry, "closed")
  const waiter = state.waiters.take()
  if (waiter === undefined) {
    state.idle.push(entry)
    return
  }
  state.waitersChanged()
  state.transition(entry, "leased", waiter.fiber)
  waiter.entry = entry
  waiter.result = Effect.succeed(entry)
  waiter.resume?.(waiter.result)
}

/** The reset to run before `entry` is returned, or `undefined` when there is nothing to reset. @internal */
export const resetOf = <A, E>(state: PoolState<A, E>, entry: Entry<A>): Effect.Effect<unknown, unknown> | undefined =>
  state.hooks.reset === undefined ? undefined : Hooks.callOptional(state.hooks.reset, entry.value)

/** Ends a lease: resets the resource if needed, then returns it. A revoked lease ends with nothing to do. @internal */
export const release = <A, E>(state: PoolState<A, E>, entry: Entry<A>): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!isLeased(entry.state)) return Effect.void
    const reset = resetOf(state, entry)
    if (reset !== undefined) return resetThenReturn(state, entry, reset)
    giveBack(state, entry, undefined)
    return Effect.void
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
