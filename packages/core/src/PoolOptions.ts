/**
 * The options of a pool: what each bound means, its default, and the validation that
 * rejects values out of range (never clamping them silently).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
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
  /**
   * Delays between creation attempts after a failure; when it ends, waiters fail with the last
   * error and the next request (or maintenance pass) starts again. While creation fails, one
   * creation at a time retries. Default: exponential from 100 ms, ×2, jittered, capped at 1 s.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * The shortest delay between two creation attempts, whatever `retrySchedule` says: a
   * schedule with no delay (`Schedule.forever`) against an `acquire` that fails at once would
   * otherwise be a busy loop. Default: 10 ms.
   */
  readonly minRetryDelay?: Duration.DurationInput | undefined
  /** After creation has failed continuously this long, `onReconnectFailed` runs and waiters fail. Default: 5 minutes. */
  readonly reconnectTimeout?: Duration.DurationInput | undefined
  /** Runs when creation has failed for `reconnectTimeout`, with the last error. */
  readonly onReconnectFailed?: ((error: E) => Effect.Effect<unknown, never, R>) | undefined
  /** On close, leases still out after this long are force-released. 0 releases them at once. Default: 500 ms. */
  readonly closeTimeout?: Duration.DurationInput | undefined
  /**
   * On close, after `closeTimeout`, the longest close waits for resources still being released
   * (their finalizers) or created (an `acquire` being interrupted); past it close returns and
   * logs a Warning. Default: 5 seconds.
   */
  readonly releaseTimeout?: Duration.DurationInput | undefined
  /** A lease held longer logs one Warning with where it was taken. Default: off. */
  readonly leakThreshold?: Duration.DurationInput | undefined
  /**
   * What makes two pools "the same configuration" for the misuse warnings (two such pools
   * open at once; the same pool opened and closed more than 3 times a minute). Default: `name`.
   */
  readonly identity?: string | undefined
  /**
   * Lets leases taken with `Pool.useShared` share a resource that is already leased that way,
   * when no resource is idle, the pool is at `max` and no caller waits (a resource that can
   * serve several callers at once: a connection that pipelines). `use` and `get` always lease a
   * resource alone, and never one that is shared. Default: off (`useShared` leases alone).
   */
  readonly share?: Share<A> | undefined
}

/**
 * How leases share a resource (see `Options.share`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Share<A> {
  /** Most leases on one resource at once, the first included. An integer >= 2. Default: 8. */
  readonly maxHolders?: number | undefined
  /**
   * How loaded a shared resource is now, lower is better, or `undefined` when it must take no
   * more leases for now (its work is stuck, it is being cancelled…). Called synchronously when
   * a lease may join it; a throw counts as `undefined`. The least loaded resource is chosen,
   * the one with fewer leases on a tie.
   */
  readonly load: (resource: A) => number | undefined
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
  readonly releaseTimeout: number
  readonly leakThreshold: number | undefined
  readonly retrySchedule: Schedule.Schedule<unknown, unknown>
  readonly minRetryDelay: number
  /** Most leases on one shared resource; `undefined` when sharing is off. */
  readonly shareMaxHolders: number | undefined
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
  closeTimeout: 500,
  releaseTimeout: 5_000,
  minRetryDelay: 10,
  shareMaxHolders: 8
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

    const share = options.share
    let shareMaxHolders: number | undefined
    if (share !== undefined) {
      if (typeof share !== "object" || share === null || typeof share.load !== "function") {
        return fail("share", share, "an object with a load function")
      }
      const holders = count("share.maxHolders", share.maxHolders, defaults.shareMaxHolders, 2)
      if (Option.isNone(holders)) return fail("share.maxHolders", share.maxHolders, "an integer >= 2")
      shareMaxHolders = holders.value
    }

    const durations = [
      ["acquireTimeout", options.acquireTimeout, defaults.acquireTimeout, false],
      ["idleTimeout", options.idleTimeout, defaults.idleTimeout, false],
      ["maxLifetime", options.maxLifetime, defaults.maxLifetime, false],
      ["checkAfterIdle", options.checkAfterIdle, defaults.checkAfterIdle, true],
      ["reconnectTimeout", options.reconnectTimeout, defaults.reconnectTimeout, false],
      ["closeTimeout", options.closeTimeout, defaults.closeTimeout, true],
      ["releaseTimeout", options.releaseTimeout, defaults.releaseTimeout, false],
      ["minRetryDelay", options.minRetryDelay, defaults.minRetryDelay, false],
      ["leakThreshold", options.leakThreshold, 0, false]
    ] as const
    const ms: Record<string, number> = {}
    for (const [field, value, fallback, allowZero] of durations) {
      if (value === undefined) {
        ms[field] = fallback
        continue
      }
      const decoded = decodeMillis(value, { allowZero })
      if (Either.isLeft(decoded)) return fail(field, value, decoded.left)
      ms[field] = decoded.right
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
      releaseTimeout: ms.releaseTimeout!,
      leakThreshold: options.leakThreshold === undefined ? undefined : ms.leakThreshold!,
      retrySchedule: options.retrySchedule ?? defaultRetrySchedule,
      minRetryDelay: ms.minRetryDelay!,
      shareMaxHolders
    })
  })

/**
 * Decodes a duration option to milliseconds — the one duration validator of `@scoped-pool/core`
 * and `@scoped-pool/pg`. Accepts what `Duration.DurationInput` accepts (a `Duration`, a number
 * of milliseconds, a bigint of nanoseconds, `"5 seconds"`, `"500 millis"`, `[seconds, nanos]`)
 * when it is finite and > 0 (≥ 0 with `allowZero`). Unlike `Duration.decode`, which turns
 * negative and NaN inputs into zero, it rejects them: options are never clamped.
 *
 * Returns the milliseconds, or a description of what was expected, with the accepted format,
 * for an error message (`PoolConfigError.expected`).
 *
 * **Example** (Validating an option)
 *
 * ```ts
 * import { Either } from "effect"
 * import { PoolOptions } from "@scoped-pool/core"
 *
 * PoolOptions.decodeMillis("5 seconds") // Either.right(5000)
 * PoolOptions.decodeMillis(-1) // Either.left('a finite duration > 0, such as "5 seconds" or "500 millis" …')
 * PoolOptions.decodeMillis(0, { allowZero: true }) // Either.right(0)
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const decodeMillis = (
  value: unknown,
  options?: { readonly allowZero?: boolean | undefined }
): Either.Either<number, string> => {
  const allowZero = options?.allowZero === true
  if (!isNegativeOrNaN(value)) {
    const decoded = Duration.decodeUnknown(value)
    if (Option.isSome(decoded) && Duration.isFinite(decoded.value)) {
      const ms = Duration.toMillis(decoded.value)
      if (!Number.isNaN(ms) && ms >= 0 && (allowZero || ms > 0)) return Either.right(ms)
    }
  }
  return Either.left(allowZero ? expectedNonNegative : expectedPositive)
}

const format = "such as \"5 seconds\" or \"500 millis\" (a number is milliseconds)"
const expectedPositive = `a finite duration > 0, ${format}`
const expectedNonNegative = `a finite duration >= 0, ${format}`

const isNegativeOrNaN = (value: unknown): boolean => {
  if (typeof value === "number") return !(value >= 0)
  if (typeof value === "bigint") return value < BigInt(0)
  if (typeof value === "string") return /^\s*-|nan/i.test(value)
  if (Array.isArray(value)) return value.some((n) => !(n >= 0))
  return false
}
