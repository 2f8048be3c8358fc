/**
 * The user code a pool runs — `acquire` and the hooks — and the one way the pool calls it.
 *
 * User code may throw when called, return an effect that dies, fail, or hang. The pool never
 * calls a hook bare inside a section that must stay atomic: `call` turns a throw into a defect
 * of the returned effect, `test` into a verdict with the defect attached, so that the section
 * always completes and decides (retire, count, log) with the cause in hand.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** @internal */
export interface Hooks<A, E> {
  readonly acquire: Effect.Effect<A, E, Scope.Scope>
  readonly check: ((a: A) => Effect.Effect<unknown, unknown>) | undefined
  readonly reset: ((a: A) => Effect.Effect<unknown, unknown> | undefined) | undefined
  readonly isAlive: ((a: A) => boolean) | undefined
  readonly onCreate: ((a: A) => Effect.Effect<unknown, E>) | undefined
  readonly onReconnectFailed: ((e: E) => Effect.Effect<unknown>) | undefined
  readonly failFast: ((e: E, pool: { readonly size: number }) => boolean) | undefined
  /** `share.load`: how loaded a shared resource is, when sharing is on. */
  readonly shareLoad: ((a: A) => number | undefined) | undefined
}

/** Calls an effect-returning hook; a throw becomes a defect of the result. @internal */
export const call = <I, X, Y>(hook: (input: I) => Effect.Effect<X, Y>, input: I): Effect.Effect<X, Y> => {
  try {
    return hook(input)
  } catch (defect) {
    return Effect.die(defect)
  }
}

/** As `call`, for a hook that may return `undefined` ("nothing to do"). @internal */
export const callOptional = <I, X, Y>(
  hook: (input: I) => Effect.Effect<X, Y> | undefined,
  input: I
): Effect.Effect<X, Y> | undefined => {
  try {
    return hook(input)
  } catch (defect) {
    return Effect.die(defect)
  }
}

/** A predicate hook's verdict: `true`, `false`, or the defect it threw (which counts as `false`). @internal */
export type Verdict = boolean | Cause.Cause<never>

/** Calls a predicate hook. @internal */
export const test = <I, J>(hook: (input: I, extra: J) => boolean, input: I, extra: J): Verdict => {
  try {
    return hook(input, extra) === true
  } catch (defect) {
    return Cause.die(defect)
  }
}

/** Calls `share.load`: a number, or `undefined` for "takes no more leases now" (also a throw, NaN or a non-number). @internal */
export const load = <I>(hook: (input: I) => number | undefined, input: I): number | undefined => {
  try {
    const n = hook(input)
    return typeof n === "number" && !Number.isNaN(n) ? n : undefined
  } catch {
    return undefined
  }
}
