/**
 * What the pool says about itself: the stats snapshot, the errors that describe its state
 * (`PoolTimeout` with its holders, `PoolRuntimeMismatch`, `LeaseRevoked`), and how a failure's
 * cause is told in a log line.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as PoolError from "../../PoolError.js"
import type * as PoolStats from "../../PoolStats.js"
import * as RuntimeGuard from "../../RuntimeGuard.js"
import { type Entry, isLeased } from "./entry.js"
import type { PoolState } from "./state.js"

/** @internal */
export const stats = <A, E>(state: PoolState<A, E>): PoolStats.Stats => ({
  name: state.name,
  size: state.live.size,
  min: state.min,
  max: state.max,
  idle: state.idle.length,
  inUse: state.inUse,
  waiting: state.waiters.size,
  pending: state.pending,
  requests: state.requests,
  requestsQueued: state.requestsQueued,
  waitTimeTotal: state.waitTimeTotal,
  waitTimeMax: state.waitTimeMax,
  timeouts: state.timeouts,
  rejected: state.rejected,
  created: state.created,
  creationErrors: state.creationErrors,
  sharedLeases: state.sharedLeases,
  retired: { ...state.retired },
  usageTimeTotal: state.usageTimeTotal,
  closed: state.closed
})

/**
 * The `PoolTimeout` of a request made at `since`; `count` says whether it ends a lease
 * request (counted in stats and metrics) rather than a `waitReady`.
 *
 * @internal
 */
export const timeoutError = <A, E>(
  state: PoolState<A, E>,
  since: number,
  options: { readonly count: boolean; readonly waiting?: number }
): PoolError.PoolTimeout => {
  if (options.count) {
    state.timeouts++
    state.rt.metrics.timeouts.update(1)
  }
  const now = state.now()
  return new PoolError.PoolTimeout({
    pool: state.name,
    elapsedMillis: now - since,
    size: state.live.size,
    max: state.max,
    inUse: state.inUse,
    idle: state.idle.length,
    waiting: options.waiting ?? state.waiters.size,
    holders: holders(state, now),
    ...(state.outage !== undefined ? { cause: state.outage.lastError } : {})
  })
}

const holders = <A, E>(state: PoolState<A, E>, now: number): Array<PoolError.Holder> => {
  const out: Array<PoolError.Holder> = []
  for (const entry of state.live) {
    if (!isLeased(entry.state)) continue
    if (entry.sharers === undefined) {
      out.push({ fiber: holderName(entry.holder), heldMillis: now - entry.leasedAt, site: entry.site })
    } else {
      for (const sharer of entry.sharers) {
        out.push({ fiber: holderName(sharer.holder), heldMillis: now - sharer.since, site: sharer.site })
      }
    }
  }
  return out.sort((a, b) => b.heldMillis - a.heldMillis).slice(0, 10)
}

/** @internal */
export const holderName = (holder: FiberId.FiberId | undefined): string =>
  holder === undefined ? "unknown" : FiberId.threadName(holder)

/** A lease held longer than `leakThreshold`: the entry, and who holds it since when, from where. @internal */
export interface Leak<A> {
  readonly entry: Entry<A>
  readonly holder: FiberId.FiberId | undefined
  readonly site: string | undefined
}

/** @internal */
export const mismatch = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>
): PoolError.PoolRuntimeMismatch =>
  new PoolError.PoolRuntimeMismatch({
    pool: state.name,
    ownerRuntime: state.rt.guard.owner.id,
    callerRuntime: RuntimeGuard.tokenOf(fiber)?.id
  })

/** The error a holder gets when close revoked its lease. @internal */
export const revokedError = <A, E>(state: PoolState<A, E>, cause: unknown): PoolError.LeaseRevoked =>
  new PoolError.LeaseRevoked({ pool: state.name, closeTimeoutMillis: state.options.closeTimeout, cause })

/** @internal */
export const leakWarning = <A, E>(state: PoolState<A, E>, leak: Leak<A>): Effect.Effect<void> =>
  Effect.logWarning(
    `resource #${leak.entry.id} leased for over ${state.options.leakThreshold} ms by fiber ${
      holderName(leak.holder)
    } at ${leak.site}; is it returned? (Pool.get holds it until its scope closes)`
  ).pipe(Effect.annotateLogs({ pool: state.name, resource: leak.entry.id }))

/**
 * How a cause reads in a log line: a typed failure by its message alone (it is expected: no
 * stack), a defect as what it is — a bug — with the cause attached for its stack.
 *
 * @internal
 */
export const describeCause = (
  cause: Cause.Cause<unknown>
): { readonly text: string; readonly defect: boolean; readonly error: unknown } => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return { text: describe(failure.value), defect: false, error: failure.value }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) return { text: describe(defect.value), defect: true, error: defect.value }
  return { text: Cause.isInterruptedOnly(cause) ? "interrupted" : Cause.pretty(cause), defect: false, error: undefined }
}

/** @internal */
export const describe = (u: unknown): string => {
  if (u instanceof Error) {
    const tag = (u as { _tag?: unknown })._tag
    if (u.message !== "") {
      return typeof tag === "string" && !u.message.includes(tag)
        ? `${tag}: ${u.message}`
        : u.message
    }
    return typeof tag === "string" ? tag : u.name
  }
  if (typeof u === "string") return u
  if (typeof u === "object" && u !== null && "_tag" in u) {
    const message = (u as { message?: unknown }).message
    return typeof message === "string" && message.length > 0 ? `${String(u._tag)}: ${message}` : String(u._tag)
  }
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}
