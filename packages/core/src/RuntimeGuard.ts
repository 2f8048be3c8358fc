/**
 * Ties a service to the runtime that built it.
 *
 * A runtime is marked with a token held in a `FiberRef`: every fiber it runs inherits the
 * token — forked and daemon fibers, and programs run under `Effect.provide(layer)` or by a
 * `ManagedRuntime` built from the layer — while fibers of any other runtime do not carry it.
 * `make` records the token of the current runtime (installing a new one for the current
 * scope when the runtime has none yet); `owns` checks a fiber in O(1) without allocating.
 *
 * Pools use this to fail fast with `PoolRuntimeMismatch` instead of hanging on a Clock or
 * background fibers that belong to another runtime. Guard your own runtime-bound services the
 * same way.
 *
 * **Example** (Guarding a service)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { RuntimeGuard } from "@scoped-pool/core"
 *
 * const makeCounter = Effect.gen(function*() {
 *   const guard = yield* RuntimeGuard.make
 *   let n = 0
 *   return {
 *     increment: RuntimeGuard.guard(guard, Effect.sync(() => ++n), (caller) =>
 *       new Error(`counter belongs to runtime #${guard.owner.id}, called from ${caller?.id ?? "none"}`))
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as GlobalValue from "effect/GlobalValue"
import type * as Scope from "effect/Scope"

/**
 * The identity of one runtime.
 *
 * @since 0.1.0
 * @category models
 */
export interface RuntimeToken {
  /** A process-wide serial number, for messages. */
  readonly id: number
}

/**
 * A recorded owner and the check against it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RuntimeGuard {
  readonly owner: RuntimeToken
  /** Whether `fiber` runs in the owner runtime. O(1), allocation-free. */
  readonly owns: (fiber: Fiber.RuntimeFiber<unknown, unknown>) => boolean
}

/**
 * The token of the runtime a fiber belongs to; `undefined` for a runtime that never built a
 * guarded service.
 *
 * @since 0.1.0
 * @category fiber refs
 */
export const currentToken: FiberRef.FiberRef<RuntimeToken | undefined> = GlobalValue.globalValue(
  "@scoped-pool/core/RuntimeGuard/currentToken",
  () => FiberRef.unsafeMake<RuntimeToken | undefined>(undefined)
)

let nextId = 1

/**
 * The token of the fiber's runtime, or `undefined`.
 *
 * @since 0.1.0
 * @category getters
 */
export const tokenOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): RuntimeToken | undefined =>
  fiber.getFiberRef(currentToken)

/**
 * Records the current runtime as the owner. When the runtime has no token yet, a new one is
 * installed for the rest of the current scope, so that everything the scope runs (and a
 * runtime built from it) carries it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<RuntimeGuard, never, Scope.Scope> = Effect.flatMap(
  FiberRef.get(currentToken),
  (existing) => {
    if (existing !== undefined) return Effect.succeed(guardOf(existing))
    const token: RuntimeToken = { id: nextId++ }
    return Effect.as(Effect.locallyScoped(currentToken, token), guardOf(token))
  }
)

const guardOf = (owner: RuntimeToken): RuntimeGuard => ({
  owner,
  owns: (fiber) => fiber.getFiberRef(currentToken) === owner
})

/**
 * Runs `effect` only when the calling fiber belongs to the guard's owner; otherwise fails
 * with `onMismatch(callerToken)`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const guard = <A, E, R, E2>(
  self: RuntimeGuard,
  effect: Effect.Effect<A, E, R>,
  onMismatch: (caller: RuntimeToken | undefined) => E2
): Effect.Effect<A, E | E2, R> =>
  Effect.withFiberRuntime((fiber) =>
    self.owns(fiber) ? effect : Effect.fail(onMismatch(tokenOf(fiber as Fiber.RuntimeFiber<unknown, unknown>)))
  )
