/**
 * Retirement and maintenance: when a resource leaves the pool (and why), its release in the
 * background, the periodic pass that ages idle resources and reports leaks, resize,
 * invalidate and drain.
 *
 * A resource is released on a fiber the pool supervises (close awaits it), with the app's
 * logger: one line per retirement, with the reason, and with the cause when a hook failed —
 * a typed failure by its message, a defect with its stack.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type * as PoolOptions from "../../PoolOptions.js"
import * as Lifetime from "../lifetime.js"
import { type Entry, isLeased } from "./entry.js"
import * as Hooks from "./hooks.js"
import * as Report from "./report.js"
import type { PoolState } from "./state.js"

/** Why a resource is retired, and the hook failure behind it, if any. @internal */
export interface Why {
  readonly reason: PoolOptions.RetireReason
  readonly cause?: Cause.Cause<unknown> | undefined
}

const dead: Why = { reason: "dead" }
const expired: Why = { reason: "expired" }
const closed: Why = { reason: "closed" }
const idle: Why = { reason: "idle" }

const aliveness = <A, E>(state: PoolState<A, E>, entry: Entry<A>): Why | undefined => {
  if (state.hooks.isAlive === undefined) return undefined
  const verdict = Hooks.test(state.hooks.isAlive, entry.value, undefined)
  if (verdict === true) return undefined
  return verdict === false ? dead : { reason: "dead", cause: verdict }
}

/** Why a resource just returned (now idle) must not be kept, if it must not. @internal */
export const onReturn = <A, E>(state: PoolState<A, E>, entry: Entry<A>, now: number): Why | undefined => {
  if (state.closed) return closed
  return aliveness(state, entry) ??
    (Lifetime.isExpired(entry.expiresAt, now) || entry.uses >= state.options.maxUses ? expired : undefined) ??
    (state.live.size > state.max ? idle : undefined)
}

/** Why an idle resource must not be leased, if it must not. @internal */
export const onCheckout = <A, E>(state: PoolState<A, E>, entry: Entry<A>, now: number): Why | undefined =>
  aliveness(state, entry) ?? (Lifetime.isExpired(entry.expiresAt, now) ? expired : undefined)

/**
 * Takes an entry out of the pool and releases its resource in the background, then refills.
 * `cause` is the hook failure behind `reason`, if any: it is logged with the retirement.
 *
 * @internal
 */
export const retire = <A, E>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  reason: PoolOptions.RetireReason,
  cause?: Cause.Cause<unknown>
): void => {
  if (entry.state === "retired" || entry.state === "revoked") return
  state.transition(entry, "retired")
  release(state, entry, reason, cause)
  state.grow()
}

/** Releases a leased resource under its holder, whose return then fails with `LeaseRevoked` (close). @internal */
export const revoke = <A, E>(state: PoolState<A, E>, entry: Entry<A>): void => {
  if (!isLeased(entry.state)) return
  state.transition(entry, "revoked")
  release(state, entry, "closed", undefined)
}

const release = <A, E>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  reason: PoolOptions.RetireReason,
  cause: Cause.Cause<unknown> | undefined
): void => {
  state.live.delete(entry)
  state.byValue.delete(entry.value)
  state.retired[reason]++
  const described = cause === undefined ? undefined : Report.describeCause(cause)
  const message = `retired resource #${entry.id} (${reason})` +
    (described === undefined ? "" : `: ${hookOf(reason)} ${described.defect ? "died" : "failed"}: ${described.text}`)
  const log = described?.defect === true
    ? Effect.logWarning(message, cause!)
    : reason === "closed"
    ? Effect.logDebug(message)
    : Effect.logInfo(message)
  state.rt.runRetirement(
    Scope.close(entry.scope, Exit.void).pipe(
      Effect.zipRight(log),
      Effect.catchAllCause((cause) => Effect.logWarning(`releasing resource #${entry.id} failed`, cause)),
      Effect.annotateLogs({ pool: state.name, resource: entry.id, reason }),
      Effect.uninterruptible
    )
  )
}

const hookOf = (reason: PoolOptions.RetireReason): string => {
  switch (reason) {
    case "check-failed":
      return "check"
    case "reset-failed":
      return "reset"
    case "dead":
      return "isAlive"
    default:
      return "hook"
  }
}

/** One maintenance pass: retire expired and idle entries, refill to `min`; returns the leases to report. @internal */
export const maintain = <A, E>(state: PoolState<A, E>): Array<Report.Leak<A>> => {
  const now = state.now()
  // The idle stack is LIFO, so its bottom holds the entries idle longest.
  for (let i = 0; i < state.idle.length;) {
    const entry = state.idle[i]!
    const why = onCheckout(state, entry, now) ??
      (now - entry.lastUsedAt >= state.options.idleTimeout && state.live.size > state.min ? idle : undefined)
    if (why === undefined) {
      i++
      continue
    }
    state.idle.splice(i, 1)
    retire(state, entry, why.reason, why.cause)
  }
  state.retryAgain()
  state.grow()
  const leaks: Array<Report.Leak<A>> = []
  const threshold = state.options.leakThreshold
  if (threshold !== undefined) {
    for (const entry of state.live) {
      if (!isLeased(entry.state)) continue
      if (entry.sharers === undefined) {
        if (!entry.leakReported && now - entry.leasedAt >= threshold) {
          entry.leakReported = true
          leaks.push({ entry, holder: entry.holder, site: entry.site })
        }
        continue
      }
      // A shared entry may stay leased for long while each of its leases is short: each is its own.
      for (const sharer of entry.sharers) {
        if (!sharer.leakReported && now - sharer.since >= threshold) {
          sharer.leakReported = true
          leaks.push({ entry, holder: sharer.holder, site: sharer.site })
        }
      }
    }
  }
  return leaks
}

/** @internal */
export const resize = <A, E>(state: PoolState<A, E>, min: number, max: number): void => {
  state.min = min
  state.max = max
  state.publish()
  while (state.live.size > state.max && state.idle.length > 0) retire(state, state.idle.shift()!, "idle")
  state.grow()
}

/** @internal */
export const invalidate = <A, E>(state: PoolState<A, E>, value: A): void => {
  const entry = state.byValue.get(value)
  if (entry === undefined) return
  if (entry.state === "leased") state.transition(entry, "invalidated")
  else if (entry.state === "idle") {
    state.idle.splice(state.idle.indexOf(entry), 1)
    retire(state, entry, "invalidated")
  }
}

/** @internal */
export const drain = <A, E>(state: PoolState<A, E>): void => {
  for (const entry of state.live) if (entry.state === "leased") state.transition(entry, "invalidated")
  for (const entry of state.idle.splice(0)) retire(state, entry, "invalidated")
}
