/**
 * Checkout: admitting a request, leasing an idle resource (checked first when it was idle
 * long), waiting in the FIFO queue, and the deadlines of waiters.
 *
 * The hot path — an idle resource leased and returned by `use` — is two synchronous sections
 * with nothing between them but `f`, opens no Scope and allocates only what Effect needs to
 * sequence them. `f` and `check` are user code: `f` is called inside the lease (a throw is a
 * defect of the caller's result, and the lease is returned), `check` runs interruptibly and
 * within the caller's `acquireTimeout`; a check that fails, dies, hangs past the deadline or is
 * interrupted retires its resource (its state is unknown) and the caller tries the next one.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as PoolError from "../../PoolError.js"
import * as Lifetime from "../lifetime.js"
import { wakeableSleep } from "../timers.js"
import type { Entry, Sharer } from "./entry.js"
import * as Handoff from "./handoff.js"
import * as Hooks from "./hooks.js"
import * as Report from "./report.js"
import * as Retirement from "./retirement.js"
import type { PoolState } from "./state.js"
import { Waiter } from "./waiters.js"

type Restore = <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>

/** Runs `f` with a leased resource, returned when `f` ends, however it ends. @internal */
export const use = <A, E, B, E2, R2>(
  state: PoolState<A, E>,
  f: (a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E | E2 | PoolError.PoolError, R2> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime((fiber) => {
      const denied = admit(state, fiber)
      if (denied !== undefined) return denied
      const now = state.now()
      const entry = takeIdle(state, fiber, now)
      if (entry !== undefined && !needsCheck(state, entry, now)) return runLeased(state, entry, restore, f)
      const leased = entry === undefined ? wait(state, fiber, now, now) : checkThenLease(state, entry, fiber, now)
      return Effect.flatMap(leased, (entry) => runLeased(state, entry, restore, f))
    })
  )

const runLeased = <A, E, B, E2, R2>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  restore: Restore,
  f: (a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E2 | PoolError.PoolError, R2> => runLease(state, entry, undefined, restore, f)

/**
 * Runs `f` on a lease — `entry`'s whole, or `sharer`'s share of it — protected (a throw is a
 * defect of the body; interruptible only inside `f`), then ends the lease however `f` ended:
 * the holder of a lease revoked meanwhile gets `LeaseRevoked`.
 */
const runLease = <A, E, B, E2, R2>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  sharer: Sharer<A> | undefined,
  restore: Restore,
  f: (a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E2 | PoolError.PoolError, R2> => {
  let body: Effect.Effect<B, E2, R2>
  try {
    body = f(entry.value)
  } catch (defect) {
    body = Effect.die(defect)
  }
  return Effect.flatMap(Effect.exit(restore(body)), (exit): Effect.Effect<B, E2 | PoolError.PoolError> => {
    if (entry.state === "revoked") {
      return Effect.fail(Report.revokedError(state, Exit.isFailure(exit) ? exit.cause : undefined))
    }
    const returned = sharer === undefined ? Handoff.end(state, entry) : Handoff.endShared(state, sharer)
    return returned === undefined ? exit : Effect.zipRight(returned, exit)
  })
}

/**
 * As `use`, but the lease may be shared (see `PoolOptions.share`): an idle resource is leased
 * as a shared one; with none idle, the pool at `max` and nobody waiting, the caller joins the
 * least loaded shared resource that has room; else it waits in the same FIFO queue, and may be
 * given either a whole resource or a lease on a shared one. Without `share`, it is `use`.
 *
 * @internal
 */
export const useShared = <A, E, B, E2, R2>(
  state: PoolState<A, E>,
  f: (a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E | E2 | PoolError.PoolError, R2> => {
  if (state.options.shareMaxHolders === undefined) return use(state, f)
  return Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime((fiber) => {
      const denied = admit(state, fiber)
      if (denied !== undefined) return denied
      const now = state.now()
      const entry = takeIdle(state, fiber, now)
      if (entry !== undefined && !needsCheck(state, entry, now)) {
        return runShared(state, state.beginShared(entry), restore, f)
      }
      const joined = entry === undefined ? Handoff.join(state, fiber, now) : undefined
      if (joined !== undefined) return runShared(state, joined, restore, f)
      const leased = entry === undefined ? waitShared(state, fiber, now, now) : checkShared(state, entry, fiber, now)
      return Effect.flatMap(leased, (sharer) => runShared(state, sharer, restore, f))
    })
  )
}

/** As `leaseOrWait`, for a `useShared` caller: a lease on an idle entry, on a shared one, or a wait for either. */
const leaseShared = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>,
  since: number
): Effect.Effect<Sharer<A>, E | PoolError.PoolError> => {
  const now = state.now()
  const entry = takeIdle(state, fiber, now)
  if (entry !== undefined) {
    return needsCheck(state, entry, now)
      ? checkShared(state, entry, fiber, since)
      : Effect.succeed(state.beginShared(entry))
  }
  const joined = Handoff.join(state, fiber, now)
  return joined !== undefined ? Effect.succeed(joined) : waitShared(state, fiber, since, now)
}

/** As `checkThenLease`, for a `useShared` caller: after a failed check it tries again as a sharer. */
const checkShared = <A, E>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  fiber: Fiber.RuntimeFiber<any, any>,
  since: number
): Effect.Effect<Sharer<A>, E | PoolError.PoolError> =>
  checkThen(state, entry, since, (checked) => state.beginShared(checked), () => leaseShared(state, fiber, since))

/**
 * Queues a `useShared` caller: it is handed a lease on a whole entry or a shared one. A caller
 * served while it queued (a creation that `queue` started ended at once, and the waiters ahead
 * of it were served first, it joining them) yields once before its `f` runs, so that theirs
 * start first: the order of `f`s stays the queue's.
 */
const waitShared = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>,
  since: number,
  now: number
): Effect.Effect<Sharer<A>, E | PoolError.PoolError> => {
  const waiter = queue(state, fiber, since, true)
  if (!(waiter instanceof Waiter)) return waiter
  const leased = Effect.map(waitFor(state, waiter, now), () => waiter.sharer!)
  return waiter.result === undefined ? leased : Effect.zipRight(Effect.yieldNow(), leased)
}

const runShared = <A, E, B, E2, R2>(
  state: PoolState<A, E>,
  sharer: Sharer<A>,
  restore: Restore,
  f: (a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E2 | PoolError.PoolError, R2> => runLease(state, sharer.entry, sharer, restore, f)

/** Leases an entry: an idle one at once, or waits (FIFO) for one. @internal */
export const acquire = <A, E>(state: PoolState<A, E>): Effect.Effect<Entry<A>, E | PoolError.PoolError> =>
  Effect.withFiberRuntime((fiber) => {
    const denied = admit(state, fiber)
    if (denied !== undefined) return denied
    const now = state.now()
    return leaseOrWait(state, fiber, now)
  })

/** A lease for the rest of the current scope. @internal */
export const get = <A, E>(state: PoolState<A, E>): Effect.Effect<A, E | PoolError.PoolError, Scope.Scope> => {
  const lease = acquire(state)
  // Scope.addFinalizer rather than Effect.acquireRelease: the latter diffs FiberRefs per call.
  return Effect.uninterruptible(
    Effect.flatMap(
      Effect.scope,
      (scope) =>
        Effect.flatMap(
          lease,
          (entry) => Effect.as(Scope.addFinalizer(scope, Handoff.release(state, entry)), entry.value)
        )
    )
  )
}

/** Fails a caller of a closed pool or of another runtime; counts the request otherwise. */
const admit = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>
): Effect.Effect<never, PoolError.PoolError> | undefined => {
  if (state.closed) return state.closedError
  if (!state.rt.guard.owns(fiber)) return Effect.fail(Report.mismatch(state, fiber))
  state.requests++
  return undefined
}

/** Leases an idle entry (checking it first if due), or queues; `since` is when the request started. */
const leaseOrWait = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>,
  since: number
): Effect.Effect<Entry<A>, E | PoolError.PoolError> => {
  const now = state.now()
  const entry = takeIdle(state, fiber, now)
  if (entry === undefined) return wait(state, fiber, since, now)
  return needsCheck(state, entry, now) ? checkThenLease(state, entry, fiber, since) : Effect.succeed(entry)
}

/** Leases the most recently used idle entry, retiring those found expired or dead on the way. */
const takeIdle = <A, E>(state: PoolState<A, E>, fiber: Fiber.RuntimeFiber<any, any>, now: number) => {
  let entry: Entry<A> | undefined
  while ((entry = state.idle.pop()) !== undefined) {
    const why = Retirement.onCheckout(state, entry, now)
    if (why === undefined) {
      state.transition(entry, "leased", fiber, now)
      return entry
    }
    Retirement.retire(state, entry, why.reason, why.cause)
  }
  return undefined
}

const needsCheck = <A, E>(state: PoolState<A, E>, entry: Entry<A>, now: number): boolean =>
  state.hooks.check !== undefined && Lifetime.needsCheck(entry.lastUsedAt, now, state.options.checkAfterIdle)

/**
 * Checks an entry already leased to the caller. The check is interruptible (the caller's own
 * timeout or interruption cuts it short) and bounded by the caller's deadline; any other end
 * than success retires the entry, then the caller's request goes on (or ends) as that end says.
 */
const checkThenLease = <A, E>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  fiber: Fiber.RuntimeFiber<any, any>,
  since: number
): Effect.Effect<Entry<A>, E | PoolError.PoolError> =>
  checkThen(state, entry, since, (checked) => checked, () => leaseOrWait(state, fiber, since))

/** The check of `checkThenLease`: `lease` makes the caller's lease of a checked entry, `retry` tries again. */
const checkThen = <A, E, L>(
  state: PoolState<A, E>,
  entry: Entry<A>,
  since: number,
  lease: (checked: Entry<A>) => L,
  retry: () => Effect.Effect<L, E | PoolError.PoolError>
): Effect.Effect<L, E | PoolError.PoolError> => {
  const remaining = Math.max(0, since + state.options.acquireTimeout - state.now())
  const check = Effect.timeoutOption(Hooks.call(state.hooks.check!, entry.value), Duration.millis(remaining))
  return Effect.matchCauseEffect(Effect.interruptible(check), {
    onSuccess: (checked): Effect.Effect<L, E | PoolError.PoolError> => {
      // Revoked while checking: the pool closed, and closeTimeout passed.
      if (entry.state === "revoked") return state.closedError
      if (Option.isSome(checked)) return Effect.succeed(lease(entry))
      Retirement.retire(state, entry, "check-failed", timedOut)
      return Effect.fail(Report.timeoutError(state, since, { count: true }))
    },
    onFailure: (cause) => {
      Retirement.retire(state, entry, "check-failed", cause)
      if (Cause.isInterrupted(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      return state.closed ? state.closedError : retry()
    }
  })
}

const timedOut = Cause.fail("it did not end within the caller's acquireTimeout")

/** Queues the caller (FIFO) until an entry is handed over, its deadline passes, or the pool closes. */
const wait = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>,
  since: number,
  now: number
): Effect.Effect<Entry<A>, E | PoolError.PoolError> => {
  const waiter = queue(state, fiber, since, false)
  return waiter instanceof Waiter ? waitFor(state, waiter, now) : waiter
}

/** Puts the caller in the queue, or fails it with `PoolFull`. */
const queue = <A, E>(
  state: PoolState<A, E>,
  fiber: Fiber.RuntimeFiber<any, any>,
  since: number,
  shared: boolean
): Waiter<A, E | PoolError.PoolError> | Effect.Effect<never, PoolError.PoolFull> => {
  if (state.waiters.size >= state.options.maxWaiting) {
    state.rejected++
    return Effect.fail(
      new PoolError.PoolFull({ pool: state.name, waiting: state.waiters.size, maxWaiting: state.options.maxWaiting })
    )
  }
  state.requestsQueued++
  const waiter = new Waiter<A, E | PoolError.PoolError>(since, since + state.options.acquireTimeout, fiber, shared)
  state.waiters.push(waiter)
  state.waitersChanged()
  state.retryAgain()
  state.grow()
  if (state.expirerTarget === undefined || waiter.deadline < state.expirerTarget) state.expirer.wake?.()
  return waiter
}

/** Waits until `waiter` is handed an entry, its deadline passes, or the pool closes. */
const waitFor = <A, E>(
  state: PoolState<A, E>,
  waiter: Waiter<A, E | PoolError.PoolError>,
  now: number
): Effect.Effect<Entry<A>, E | PoolError.PoolError> =>
  Effect.async<Entry<A>, E | PoolError.PoolError>((resume) => {
    if (waiter.result !== undefined) resume(waiter.result)
    else waiter.resume = resume
  }).pipe(
    Effect.interruptible,
    Effect.onExit((exit) => waitEnded(state, waiter, exit, now))
  )

const waitEnded = <A, E>(
  state: PoolState<A, E>,
  waiter: Waiter<A, E | PoolError.PoolError>,
  exit: Exit.Exit<Entry<A>, unknown>,
  queuedAt: number
) =>
  Effect.suspend((): Effect.Effect<void> => {
    const now = state.now()
    const waited = now - queuedAt
    state.waitTimeTotal += waited
    if (waited > state.waitTimeMax) state.waitTimeMax = waited
    state.recordWait(waited)
    if (Exit.isSuccess(exit)) return Effect.void
    // The waiter gave up (interrupt). If an entry was handed to it in the same instant, it goes
    // back to the pool: never lost (psycopg issue 509). A lease on a shared entry ends as any
    // shared lease does: the last one resets the entry for the work of those before it.
    if (state.waiters.leave(waiter)) state.waitersChanged()
    else if (waiter.sharer !== undefined) return Handoff.endShared(state, waiter.sharer) ?? Effect.void
    else if (waiter.entry !== undefined) Handoff.giveBack(state, waiter.entry, undefined)
    return Effect.void
  })

/**
 * Fails waiters with `PoolTimeout` at their deadline: one fiber sleeping until the earliest
 * deadline serves every waiter, instead of a timer (and a race) per waiter. Its sleep is the
 * one timer of the pool that keeps the process alive: while a caller waits, its deadline must
 * come (a waiter deadlocked on its own lease gets its `PoolTimeout`, not a process exit).
 *
 * @internal
 */
export const expireWaiters = <A, E>(state: PoolState<A, E>): Effect.Effect<never> =>
  Effect.suspend(() => {
    const now = state.now()
    const expired = state.waiters.takeExpired(now)
    for (let i = 0; i < expired.length; i++) {
      // Each one's error counts those expiring after it in this instant as still waiting.
      const waiting = state.waiters.size + expired.length - 1 - i
      state.settle(expired[i]!, Effect.fail(Report.timeoutError(state, expired[i]!.since, { count: true, waiting })))
    }
    if (expired.length > 0) state.waitersChanged()
    const next = state.waiters.nextDeadline()
    state.expirerTarget = next
    state.expirerHolds = next !== undefined
    return wakeableSleep(state.rt.clock, next === undefined ? undefined : next - now, state.expirer, next !== undefined)
  }).pipe(Effect.forever)
