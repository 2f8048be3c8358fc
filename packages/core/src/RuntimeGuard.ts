/**
 * Ties a service to the runtime that owns it.
 *
 * **What "the runtime" is.** In Effect 3 a `Runtime` value is only a snapshot (context,
 * FiberRefs, flags): `Effect.runtime()` makes a new one each time, and a `ManagedRuntime`
 * hands out the snapshot taken when its layer was built. What identifies the runtime that owns
 * a service is the layer build that made it: every `ManagedRuntime`, every
 * `Effect.provide(layer)` and every `Layer.launch` builds its layers with one `Layer.MemoMap`,
 * and every fiber of that build — the service's own, and its siblings' (`Layer.merge`) —
 * carries that MemoMap in its context as `Layer.CurrentMemoMap`. So the owner is a token kept
 * per MemoMap: the guard made in a build takes the token of the build's MemoMap (creating it on
 * first use), and every guard made in one build shares it.
 *
 * **Which fibers carry it.** The token reaches a fiber in one of two ways, and `owns` accepts
 * either (two comparisons and two map lookups: O(1), no allocation):
 *
 * - through the build's MemoMap, found in the fiber's context: a fiber of the build, or of a
 *   `Runtime` captured during it — a queue consumer or a router in a sibling layer that took
 *   `Effect.runtime()` when it was built and runs callbacks with `Runtime.runFork` later;
 * - through the FiberRef `currentToken`, installed for the rest of the scope that made the
 *   guard: the program under `Effect.provide(layer)`, the `ManagedRuntime`'s own fibers (its
 *   runtime is taken after the build, with the FiberRefs the build left), and every fiber
 *   forked from them, daemons included. A layer memoized in a MemoMap replays that FiberRef
 *   when another build takes it from the MemoMap.
 *
 * A guard made outside any layer (`Effect.scoped(Pool.make(…))` in a test) gets a token of
 * its own, carried by the FiberRef alone; one made in a fiber that carries a token already
 * takes that token (a pool opened by a program of the runtime belongs to the runtime).
 *
 * **Sharing one service between runtimes.** `ManagedRuntime`s built with one MemoMap
 * (`ManagedRuntime.make(layer, memoMap)`) share the layers they have in common — built once,
 * memoized — and co-own them: this is the supported way to use one pool from several
 * runtimes. Any other runtime — another `ManagedRuntime`, a bare `Effect.runPromise`, another
 * test with its own `TestClock` — carries neither the MemoMap nor the token and is refused.
 * (A service cannot reach a worker thread at all: it cannot be cloned.)
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
import * as Layer from "effect/Layer"
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
 * The token carried by a fiber's FiberRefs (see the module's description); `undefined` for a
 * fiber that never ran where a guard was made.
 *
 * @since 0.1.0
 * @category fiber refs
 */
export const currentToken: FiberRef.FiberRef<RuntimeToken | undefined> = GlobalValue.globalValue(
  "@scoped-pool/core/RuntimeGuard/currentToken",
  () => FiberRef.unsafeMake<RuntimeToken | undefined>(undefined)
)

/** The token of each layer build (by its MemoMap) that made a guard. */
const tokens: WeakMap<Layer.MemoMap, RuntimeToken> = GlobalValue.globalValue(
  "@scoped-pool/core/RuntimeGuard/tokens",
  () => new WeakMap<Layer.MemoMap, RuntimeToken>()
)

let nextId = 1

const memoKey = Layer.CurrentMemoMap.key

/** The MemoMap a fiber's context holds, if a layer build put one there (never the global default). */
const memoMapOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Layer.MemoMap | undefined =>
  fiber.currentContext.unsafeMap.get(memoKey) as Layer.MemoMap | undefined

const memoTokenOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): RuntimeToken | undefined => {
  const memoMap = memoMapOf(fiber)
  return memoMap === undefined ? undefined : tokens.get(memoMap)
}

/**
 * The token of the runtime a fiber belongs to, or `undefined`.
 *
 * @since 0.1.0
 * @category getters
 */
export const tokenOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): RuntimeToken | undefined =>
  fiber.getFiberRef(currentToken) ?? memoTokenOf(fiber)

/**
 * Records the current runtime as the owner: the token the fiber carries, else the token of
 * the layer build it runs in, else a new one. The token is installed in the FiberRef for the
 * rest of the current scope, so that everything the scope runs (and a runtime built from it)
 * carries it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<RuntimeGuard, never, Scope.Scope> = Effect.withFiberRuntime((fiber) => {
  const existing = fiber.getFiberRef(currentToken)
  const memoMap = memoMapOf(fiber as Fiber.RuntimeFiber<unknown, unknown>)
  const owner = existing ?? (memoMap === undefined ? undefined : tokens.get(memoMap)) ?? { id: nextId++ }
  if (memoMap !== undefined && !tokens.has(memoMap)) tokens.set(memoMap, owner)
  const guard = guardOf(owner)
  return existing === owner ? Effect.succeed(guard) : Effect.as(Effect.locallyScoped(currentToken, owner), guard)
})

const guardOf = (owner: RuntimeToken): RuntimeGuard => ({
  owner,
  owns: (fiber) => fiber.getFiberRef(currentToken) === owner || memoTokenOf(fiber) === owner
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
