/**
 * The errors a pool user can hit. Each is tagged, carries the pool's name, and has a
 * message that says what happened and what to do about it.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"

/**
 * The identifier shared by every pool error.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~@scoped-pool/core/PoolError" = "~@scoped-pool/core/PoolError" as const

/**
 * The type of {@link TypeId}.
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * `Data.TaggedError` for failures a program expects and handles — a timeout, a closed pool, a
 * refused login. Printed (by `runMain`, a logger, `Cause.pretty`), such an error shows its
 * message, its cause's and the span it was raised in, but no stack trace: the stack would point
 * into the pool's internals, never at the caller's code. Every error of `@scoped-pool/core` and
 * `@scoped-pool/pg` is one.
 *
 * **Example** (An expected failure of one's own)
 *
 * ```ts
 * import { PoolError } from "@scoped-pool/core"
 *
 * class QuotaExceeded extends PoolError.ExpectedError("QuotaExceeded")<{ readonly tenant: string }> {
 *   override get message() {
 *     return `tenant ${this.tenant} is over its quota; retry after the next billing period`
 *   }
 * }
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const ExpectedError = <Tag extends string>(tag: Tag): ReturnType<typeof Data.TaggedError<Tag>> => {
  const Base = Data.TaggedError(tag) as unknown as new(args: unknown) => Error
  class Expected extends Base {
    constructor(args: unknown) {
      super(args)
      Object.defineProperty(this, "stack", {
        configurable: true,
        get(this: Error) {
          return `${this.name}: ${this.message}`
        }
      })
    }
  }
  return Expected as unknown as ReturnType<typeof Data.TaggedError<Tag>>
}

/**
 * A lease that was still held when a waiter gave up, as reported in {@link PoolTimeout}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Holder {
  /** The fiber that holds the lease, e.g. `#12`. */
  readonly fiber: string
  /** How long it has held it, in milliseconds. */
  readonly heldMillis: number
  /** Where the lease was taken (span name or stack frame); present when `leakThreshold` is set. */
  readonly site?: string | undefined
}

/**
 * No resource became free within `acquireTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolTimeout extends ExpectedError("PoolTimeout")<{
  readonly pool: string
  readonly elapsedMillis: number
  readonly size: number
  readonly max: number
  readonly inUse: number
  readonly idle: number
  readonly waiting: number
  readonly holders: ReadonlyArray<Holder>
  /** The last error of creating a resource, when creation is failing. */
  readonly cause?: unknown
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    const head = `pool "${this.pool}": no resource after ${this.elapsedMillis} ms (size ${this.size}/${this.max}, ` +
      `in use ${this.inUse}, idle ${this.idle}, waiting ${this.waiting})`
    const advice = this.cause !== undefined
      ? `; creating resources fails: ${describe(this.cause)}`
      : "; raise max or acquireTimeout, shorten the work done while holding a lease, or set leakThreshold to find the holders"
    const holders = this.holders.length === 0 ?
      "" :
      `\nheld by:\n${
        this.holders.map((h) => `  fiber ${h.fiber} for ${h.heldMillis} ms${h.site ? ` at ${h.site}` : ""}`).join("\n")
      }`
    return head + advice + holders
  }
}

/**
 * Too many callers are already waiting (`maxWaiting`); fails at once instead of queueing.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolFull extends ExpectedError("PoolFull")<{
  readonly pool: string
  readonly waiting: number
  readonly maxWaiting: number
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `pool "${this.pool}": already ${this.waiting} requests waiting (maxWaiting ${this.maxWaiting}); ` +
      "shed load upstream, raise max, or raise maxWaiting"
  }
}

/**
 * The pool is closed (its scope ended, or `close` was called).
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolClosed extends ExpectedError("PoolClosed")<{
  readonly pool: string
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `pool "${this.pool}" is closed; use it only inside the scope or Layer that built it`
  }
}

/**
 * The pool was closed while this lease was still held after `closeTimeout`: its resource
 * was released under the holder.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseRevoked extends ExpectedError("LeaseRevoked")<{
  readonly pool: string
  readonly closeTimeoutMillis: number
  /** What the holder's own work ended with, if it failed. */
  readonly cause?: unknown
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `pool "${this.pool}" closed while this lease was still held after closeTimeout ` +
      `(${this.closeTimeoutMillis} ms), so its resource was released; finish or interrupt work before closing the pool, ` +
      "or raise closeTimeout"
  }
}

/**
 * The pool was used from a runtime that did not build it.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolRuntimeMismatch extends ExpectedError("PoolRuntimeMismatch")<{
  readonly pool: string
  readonly ownerRuntime: number
  /** The caller's runtime id, or `undefined` when the caller has none (e.g. a bare `Effect.runPromise`). */
  readonly callerRuntime: number | undefined
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    const caller = this.callerRuntime === undefined ? "a runtime that owns no pool" : `runtime #${this.callerRuntime}`
    return `pool "${this.pool}" belongs to runtime #${this.ownerRuntime} but was called from ${caller}; ` +
      "provide the pool's Layer to this runtime instead of sharing the instance"
  }
}

/**
 * An option is out of its allowed range. Options are never clamped silently.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolConfigError extends ExpectedError("PoolConfigError")<{
  readonly pool: string
  readonly field: string
  readonly value: unknown
  readonly expected: string
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `pool "${this.pool}": ${this.field} must be ${this.expected}, got ${describe(this.value)}`
  }
}

/**
 * What a lease can fail with, besides the resource's own creation error.
 *
 * @since 0.1.0
 * @category errors
 */
export type PoolError = PoolTimeout | PoolFull | PoolClosed | LeaseRevoked | PoolRuntimeMismatch

/**
 * Tells a {@link PoolError} (or {@link PoolConfigError}) apart from any other value, e.g.
 * the `cause` of an `SqlError`.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isPoolError = (u: unknown): u is PoolError | PoolConfigError => Predicate.hasProperty(u, TypeId)

const describe = (u: unknown): string => {
  if (u instanceof Error) return u.message
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "bigint" || typeof u === "boolean" || u == null) return String(u)
  try {
    return JSON.stringify(u)
  } catch {
    return String(u)
  }
}
