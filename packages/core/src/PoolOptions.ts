/**
 * The options of a pool: what each bound means, its default, and the validation that
 * rejects values out of range (never clamping them silently).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { PoolConfigError } from "./PoolError.js"

/**
 * Why a resource left the pool.
 *
 * @since 0.1.0
 * @category models
 */
export type RetireReason = "expired" | "idle" | "dead" | "check-failed" | "reset-failed" | "invalidated" | "closed"

/**
 * Everything a pool can be told. Only `acquire` is required.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E, R> {
  /** Creates one resource. It may use `Scope`: the resource's finalizer is its release. */
  readonly acquire: Effect.Effect<A, E, R | Scope.Scope>
  /** Shown in every log line, error and metric. Default: `"pool"`. */
  readonly name?: string | undefined
  /** Resources kept open even when idle; prefilled in the background on open. Default: 0. */
  readonly min?: number | undefined
  /** Most resources open at once, leased or idle. Default: 10. */
  readonly max?: number | undefined
  /** Longest a caller waits for a lease before `PoolTimeout`. Default: 30 seconds. */
  readonly acquireTimeout?: Duration.DurationInput | undefined
  /** Most callers waiting at once; one more fails with `PoolFull` at once. Default: 10,000. */
  readonly maxWaiting?: number | undefined
  /** An idle resource beyond `min` is retired after this long unused. Default: 10 minutes. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /**
   * A resource is retired this long after it was created, minus up to `lifetimeJitter` of it,
   * so that resources do not all expire together. A leased resource is retired when returned.
   * Default: 30 minutes.
   */
  readonly maxLifetime?: Duration.DurationInput | undefined
  /** Fraction of `maxLifetime` taken off at random per resource, in [0, 0.5]. Default: 0.05. */
  readonly lifetimeJitter?: number | undefined
  /** A resource is retired after this many leases. Default: unlimited. */
  readonly maxUses?: number | undefined
  /** `check` runs on checkout only when the resource was idle longer than this. Default: 500 ms. */
  readonly checkAfterIdle?: Duration.DurationInput | undefined
  /**
   * Validates an idle resource on checkout; a failure retires it ("check-failed") and tries the
   * next. Runs in the caller's fiber, so it needs no services: capture them when building the options.
   */
  readonly check?: ((resource: A) => Effect.Effect<unknown, unknown>) | undefined
  /**
   * Runs on return, in the caller's fiber; a failure retires the resource ("reset-failed").
   * Returning `undefined` says there is nothing to reset, and the resource is returned at once.
   */
  readonly reset?: ((resource: A) => Effect.Effect<unknown, unknown> | undefined) | undefined
  /** Says synchronously whether a resource is still usable; a dead one is retired ("dead"). */
  readonly isAlive?: ((resource: A) => boolean) | undefined
  /** Runs once after a resource was created; a failure counts as a creation failure. */
  readonly onCreate?: ((resource: A) => Effect.Effect<unknown, E, R>) | undefined
  /**
   * Creation errors for which waiting is pointless (a wrong password, an unknown database, or
   * an unreachable server while the pool holds no resource at all; `pool.size` tells):
   * waiters fail with such an error at once instead of waiting for `acquireTimeout`; creation
   * is still retried in the background, so the pool recovers once the cause is fixed.
   * Default: none (every error is treated as transient).
   */
  readonly failFast?: ((error: E, pool: { readonly size: number }) => boolean) | undefined
  /** Delays between creation attempts after a failure. Default: exponential from 100 ms, ×2, jittered, capped at 1 s. */
  readonly retrySchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /** After creation has failed continuously this long, `onReconnectFailed` runs and waiters fail. Default: 5 minutes. */
  readonly reconnectTimeout?: Duration.DurationInput | undefined
  /** Runs when creation has failed for `reconnectTimeout`, with the last error. */
  readonly onReconnectFailed?: ((error: E) => Effect.Effect<unknown, never, R>) | undefined
  /** On close, leases still out after this long are force-released. 0 releases them at once. Default: 500 ms. */
  readonly closeTimeout?: Duration.DurationInput | undefined
  /** A lease held longer logs one Warning with where it was taken. Default: off. */
  readonly leakThreshold?: Duration.DurationInput | undefined
  /**
   * What makes two pools "the same configuration" for the misuse warnings (two such pools
   * open at once; the same pool opened and closed more than 3 times a minute). Default: `name`.
   */
  readonly identity?: string | undefined
}

/**
 * Options with every default filled in and every value checked; durations in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved {
  readonly name: string
  readonly min: number
  readonly max: number
  readonly acquireTimeout: number
  readonly maxWaiting: number
  readonly idleTimeout: number
  readonly maxLifetime: number
  readonly lifetimeJitter: number
  readonly maxUses: number
  readonly checkAfterIdle: number
  readonly reconnectTimeout: number
  readonly closeTimeout: number
  readonly leakThreshold: number | undefined
  readonly retrySchedule: Schedule.Schedule<unknown, unknown>
}

/**
 * The defaults, in milliseconds where a duration.
 *
 * @since 0.1.0
 * @category config
 */
export const defaults = {
  name: "pool",
  min: 0,
  max: 10,
  acquireTimeout: 30_000,
  maxWaiting: 10_000,
  idleTimeout: 600_000,
  maxLifetime: 1_800_000,
  lifetimeJitter: 0.05,
  maxUses: Number.POSITIVE_INFINITY,
  checkAfterIdle: 500,
  reconnectTimeout: 300_000,
  closeTimeout: 500
} as const

/**
 * The default creation retry schedule: exponential from 100 ms, doubling, jittered, each delay
 * capped at 1 second — so that a pool serves again within about a second of its target's
 * return, while one retrying fiber puts at most one attempt a second on a target that is down.
 *
 * @since 0.1.0
 * @category config
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis", 2).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(1)))
)

/**
 * Checks every option and fills in the defaults. A value out of range fails with a
 * `PoolConfigError` that names the field and the allowed range.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = <A, E, R>(options: Options<A, E, R>): Effect.Effect<Resolved, PoolConfigError> =>
  Effect.suspend(() => {
    const name = options.name ?? defaults.name
    const fail = (field: string, value: unknown, expected: string) =>
      Effect.fail(new PoolConfigError({ pool: name, field, value, expected }))
    if (typeof name !== "string" || name.length === 0) return fail("name", name, "a non-empty string")

    const count = (field: string, value: number | undefined, fallback: number, least: number) => {
      const n = value ?? fallback
      return (Number.isInteger(n) && n >= least) || (n === Number.POSITIVE_INFINITY && field === "maxUses")
        ? Option.some(n)
        : Option.none()
    }
    const millis = (value: Duration.DurationInput | undefined, fallback: number, allowZero: boolean) =>
      value === undefined ? Option.some(fallback) : Option.fromNullable(millisOf(value, { allowZero }))

    const min = count("min", options.min, defaults.min, 0)
    if (Option.isNone(min)) return fail("min", options.min, "an integer >= 0")
    const max = count("max", options.max, defaults.max, 1)
    if (Option.isNone(max)) return fail("max", options.max, "an integer >= 1")
    if (max.value < min.value) return fail("max", options.max, `>= min (${min.value})`)
    const maxWaiting = count("maxWaiting", options.maxWaiting, defaults.maxWaiting, 0)
    if (Option.isNone(maxWaiting)) return fail("maxWaiting", options.maxWaiting, "an integer >= 0")
    const maxUses = count("maxUses", options.maxUses, defaults.maxUses, 1)
    if (Option.isNone(maxUses)) return fail("maxUses", options.maxUses, "an integer >= 1, or Infinity")
    const jitter = options.lifetimeJitter ?? defaults.lifetimeJitter
    if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 0.5)) {
      return fail("lifetimeJitter", options.lifetimeJitter, "a fraction in [0, 0.5]")
    }

    const durations = [
      ["acquireTimeout", options.acquireTimeout, defaults.acquireTimeout, false],
      ["idleTimeout", options.idleTimeout, defaults.idleTimeout, false],
      ["maxLifetime", options.maxLifetime, defaults.maxLifetime, false],
      ["checkAfterIdle", options.checkAfterIdle, defaults.checkAfterIdle, true],
      ["reconnectTimeout", options.reconnectTimeout, defaults.reconnectTimeout, false],
      ["closeTimeout", options.closeTimeout, defaults.closeTimeout, true],
      ["leakThreshold", options.leakThreshold, 0, false]
    ] as const
    const ms: Record<string, number> = {}
    for (const [field, value, fallback, allowZero] of durations) {
      const decoded = millis(value, fallback, allowZero)
      if (Option.isNone(decoded)) {
        return fail(field, value, allowZero ? "a finite duration >= 0" : "a finite duration > 0")
      }
      ms[field] = decoded.value
    }

    return Effect.succeed<Resolved>({
      name,
      min: min.value,
      max: max.value,
      acquireTimeout: ms.acquireTimeout!,
      maxWaiting: maxWaiting.value,
      idleTimeout: ms.idleTimeout!,
      maxLifetime: ms.maxLifetime!,
      lifetimeJitter: jitter,
      maxUses: maxUses.value,
      checkAfterIdle: ms.checkAfterIdle!,
      reconnectTimeout: ms.reconnectTimeout!,
      closeTimeout: ms.closeTimeout!,
      leakThreshold: options.leakThreshold === undefined ? undefined : ms.leakThreshold!,
      retrySchedule: options.retrySchedule ?? defaultRetrySchedule
    })
  })

/**
 * A duration option in milliseconds, or `undefined` when it is not a finite duration > 0
 * (≥ 0 with `allowZero`). Unlike `Duration.decode`, which turns negative and NaN inputs into
 * zero, it rejects them: options are never clamped.
 *
 * @since 0.1.0
 * @category config
 */
export const millisOf = (
  value: Duration.DurationInput,
  options: { readonly allowZero: boolean }
): number | undefined => {
  if (isNegativeOrNaN(value)) return undefined
  const decoded = Duration.decodeUnknown(value)
  if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) return undefined
  const ms = Duration.toMillis(decoded.value)
  return Number.isNaN(ms) || ms < 0 || (!options.allowZero && ms === 0) ? undefined : ms
}

const isNegativeOrNaN = (value: Duration.DurationInput): boolean => {
  if (typeof value === "number") return !(value >= 0)
  if (typeof value === "bigint") return value < BigInt(0)
  if (typeof value === "string") return /^\s*-|nan/i.test(value)
  if (Array.isArray(value)) return value.some((n) => !(n >= 0))
  return false
}
