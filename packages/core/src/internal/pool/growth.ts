/**
 * Growth and retry: creating resources in the background, retrying failed creations with
 * backoff, and readiness (`waitReady`).
 *
 * One creation is one background fiber: attempt, and on failure back off and attempt again
 * while the resource is still wanted. While creation fails, one fiber at a time retries (the
 * others give up) instead of each waiter hammering the target, and two attempts are never
 * closer than `minRetryDelay`, whatever `retrySchedule` says: an `acquire` that fails
 * synchronously under `Schedule.forever` is a slow poll, not a busy loop, and the event loop
 * stays free. The backoff's sleep is unref'd: what keeps a process alive while a caller waits
 * is that caller's deadline, not the pool's retries.
 *
 * Failures reach waiters as what they are. A typed failure is transient by default: waiters
 * keep waiting and get it as the `cause` of their `PoolTimeout`; they fail with it at once
 * when `failFast` says so, after `reconnectTimeout` of continuous failure, or when
 * `retrySchedule` gives up. A defect in `acquire` or `onCreate` is a bug: every waiter fails
 * with it at once, as a defect in its cause. Logs: one Warning when an outage starts (one
 * Error when it is a defect, with its stack), a Debug line per further failure, one Info with
 * the outage's length and attempts when creation works again.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import * as Scope from "effect/Scope"
import type * as PoolError from "../../PoolError.js"
import * as Lifetime from "../lifetime.js"
import { backgroundSleep } from "../timers.js"
import { Entry } from "./entry.js"
import * as Handoff from "./handoff.js"
import * as Hooks from "./hooks.js"
import * as Report from "./report.js"
import * as Retirement from "./retirement.js"
import type { PoolState, ReadyResume } from "./state.js"

/** The creation effect of a pool: `PoolState.create`. @internal */
export const creation = <A, E>(state: PoolState<A, E>): Effect.Effect<unknown> => {
  const { hooks, options } = state
  const onCreate = hooks.onCreate
  const acquire = onCreate === undefined
    ? hooks.acquire
    : Effect.tap(hooks.acquire, (value) => Hooks.call(onCreate, value))

  // One attempt. A success is registered in the same uninterruptible region, so an interruption
  // (close) can never fall between the resource's acquisition and its registration.
  const attempt: Effect.Effect<void, E> = Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Scope.make(), (scope) => {
      const started = state.now()
      return restore(Scope.extend(acquire, scope)).pipe(
        Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void),
        Effect.flatMap((value) => created(state, value, scope, started))
      )
    })
  )

  const schedule = options.retrySchedule
  return Effect.suspend(() => {
    let retrier = false
    let scheduleState = schedule.initial
    const loop: Effect.Effect<boolean> = Effect.flatMap(Effect.exit(attempt), (exit) => {
      if (Exit.isSuccess(exit)) return Effect.succeed(true)
      if (Cause.isInterrupted(exit.cause)) return Effect.failCause(exit.cause as Cause.Cause<never>)
      const log = failed(state, exit.cause)
      if (!state.stillNeeded() || (state.retrying && !retrier)) return Effect.as(log, false)
      retrier = true
      state.retrying = true
      const now = state.now()
      return log.pipe(
        Effect.zipRight(schedule.step(now, exit.cause, scheduleState)),
        Effect.flatMap(([next, _, decision]) => {
          scheduleState = next
          if (ScheduleDecision.isDone(decision)) return Effect.as(scheduleEnded(state), false)
          const delay = Math.max(ScheduleIntervals.start(decision.intervals) - now, options.minRetryDelay)
          return Effect.zipRight(
            backgroundSleep(state.rt.clock, delay),
            Effect.suspend(() => state.stillNeeded() ? loop : Effect.succeed(false))
          )
        })
      )
    })
    return loop.pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          if (retrier) state.retrying = false
          // A success counted itself in `created`; a creation that gave up or was interrupted is no longer
          // pending. (No grow here: the retrier that carries on, the next request or the next maintenance
          // pass starts the next one, so a schedule that gives up at once cannot turn into a loop.)
          if (!(Exit.isSuccess(exit) && exit.value)) state.pending--
        })
      )
    )
  })
}

/** Registers a new resource and hands it to a waiter or the idle stack. */
const created = <A, E>(
  state: PoolState<A, E>,
  value: A,
  scope: Scope.CloseableScope,
  started: number
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const now = state.now()
    state.pending--
    state.created++
    state.rt.metrics.createTime.update((now - started) / 1000)
    const { lifetimeJitter, maxLifetime } = state.options
    const expires = Lifetime.expiresAt(now, maxLifetime, lifetimeJitter, Math.random())
    const entry = new Entry(state.nextId++, value, scope, now, expires)
    state.live.add(entry)
    state.byValue.set(entry.value, entry)
    const outage = state.outage
    state.outage = undefined
    if (state.live.size >= state.min && state.readyWaiters.length > 0) {
      const ready = state.readyWaiters
      state.readyWaiters = []
      for (const resume of ready) resume(Effect.void)
    }
    if (state.live.size > state.max) Retirement.retire(state, entry, "idle") // resized down while it was being created
    else Handoff.offer(state, entry)
    // A success after failures: creation went one at a time, so more waiters may need some.
    state.grow()
    const log = outage === undefined || !outage.reported
      ? Effect.logDebug(`created resource #${entry.id}`)
      : Effect.logInfo(
        `creating resources works again after ${outage.failures} failed attempt(s) over ${now - outage.since} ms; ` +
          `created resource #${entry.id}`
      )
    return log.pipe(Effect.annotateLogs({ pool: state.name, resource: entry.id, size: state.live.size }))
  })

/** Records a failed attempt, settles the waiters it must, and returns what to log. */
const failed = <A, E>(state: PoolState<A, E>, cause: Cause.Cause<E>): Effect.Effect<void> => {
  const now = state.now()
  state.creationErrors++
  const described = Report.describeCause(cause)
  const first = state.outage === undefined
  const outage = state.outage ??= {
    phase: "retrying",
    since: now,
    failures: 0,
    lastCause: cause,
    lastError: undefined,
    reconnectSince: now,
    reported: false
  }
  outage.failures++
  outage.lastCause = cause
  outage.lastError = described.error
  const logs: Array<Effect.Effect<void>> = []
  // The failure went to waiting callers (failFast), which report it: the pool only notes it.
  let delivered = false
  if (described.defect) {
    // A bug in acquire or onCreate: waiting will not fix it. Every waiter gets it, as a defect.
    failWaiters(state, Effect.failCause(cause))
  } else {
    const error = described.error as E
    const failFast = state.hooks.failFast === undefined
      ? false
      : Hooks.test(state.hooks.failFast, error, { size: state.live.size })
    if (failFast !== false && failFast !== true) {
      logs.push(Effect.logWarning("failFast threw; the error is treated as transient", failFast))
    }
    if (failFast === true) delivered = failWaiters(state, Effect.fail(error)) > 0
    if (now - outage.reconnectSince >= state.options.reconnectTimeout) {
      // Failing for reconnectTimeout: waiters fail with the creation error instead of waiting on.
      outage.reconnectSince = now
      failWaiters(state, Effect.fail(error))
      logs.push(
        Effect.logWarning(
          `creating resources has failed for ${now - outage.since} ms (${outage.failures} attempts, reconnectTimeout ` +
            `${state.options.reconnectTimeout} ms); waiters fail with the last error; still retrying`
        ).pipe(Effect.annotateLogs({ error: described.text }))
      )
      const onReconnectFailed = state.hooks.onReconnectFailed
      if (onReconnectFailed !== undefined) {
        logs.push(Effect.catchAllCause(
          Hooks.call(onReconnectFailed, error),
          (cause) => Effect.logWarning("onReconnectFailed failed", cause)
        ))
      }
    }
  }
  let head: Effect.Effect<void>
  if (first && described.defect) {
    outage.reported = true
    head = Effect.logError(`creating a resource died: ${described.text}; every waiter fails with this defect`, cause)
  } else if (!outage.reported && !delivered) {
    // One Warning per outage.
    outage.reported = true
    head = Effect.logWarning(
      outage.failures === 1
        ? `creating a resource failed: ${described.text}; retrying with backoff`
        : `creating a resource failed (${outage.failures} attempts): ${described.text}; retrying with backoff`
    )
  } else {
    head = Effect.logDebug(
      first
        ? `creating a resource failed: ${described.text}; the waiting callers get this error; retrying with backoff`
        : `creating a resource failed again (${outage.failures} attempts): ${described.text}`
    )
  }
  return Effect.all([head, ...logs], { discard: true }).pipe(
    Effect.annotateLogs({ pool: state.name, attempts: outage.failures }),
    Effect.annotateLogs(described.defect ? {} : { error: described.text })
  )
}

/** `retrySchedule` gave up: no creation runs for the waiters now, so they fail with the last error. */
const scheduleEnded = <A, E>(state: PoolState<A, E>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const outage = state.outage
    if (outage === undefined) return Effect.void
    outage.phase = "given-up"
    failWaiters(state, Effect.failCause(outage.lastCause as Cause.Cause<E>))
    return Effect.logWarning(
      `retrySchedule ended after ${outage.failures} failed attempt(s); waiters fail with the last error, ` +
        "and the next request or maintenance pass tries again"
    ).pipe(Effect.annotateLogs({ pool: state.name }))
  })

/** Fails every waiter with `result`; returns how many there were. */
const failWaiters = <A, E>(state: PoolState<A, E>, result: Effect.Effect<never, E | PoolError.PoolError>): number => {
  const waiters = state.waiters.takeAll()
  if (waiters.length === 0) return 0
  state.waitersChanged()
  for (const waiter of waiters) state.settle(waiter, result)
  return waiters.length
}

/** Resolves once `min` resources are open; fails with `PoolTimeout` after `timeout`, with `PoolClosed` on close. @internal */
export const waitReady = <A, E>(
  state: PoolState<A, E>,
  timeout: Duration.DurationInput
): Effect.Effect<void, PoolError.PoolTimeout | PoolError.PoolClosed> =>
  Effect.suspend(() => {
    if (state.closed) return state.closedError
    if (state.live.size >= state.min) return Effect.void
    const since = state.now()
    return Effect.async<void, PoolError.PoolClosed>((resume) => {
      // The timeout below runs this in a fiber of its own, which may start after close began.
      if (state.closed) return resume(state.closedError)
      if (state.live.size >= state.min) return resume(Effect.void)
      const ready: ReadyResume = (result) => resume(result)
      state.readyWaiters.push(ready)
      return Effect.sync(() => {
        state.readyWaiters = state.readyWaiters.filter((f) => f !== ready)
      })
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => Report.timeoutError(state, since, { count: false })
      })
    )
  })
