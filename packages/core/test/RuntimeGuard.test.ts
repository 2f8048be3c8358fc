import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Pool from "../src/Pool.js"
import * as RuntimeGuard from "../src/RuntimeGuard.js"
import { type CreateError, makeTestResource, type Resource } from "./utils/TestResource.js"

class TestPool extends Context.Tag("TestPool")<TestPool, Pool.Pool<Resource, CreateError>>() {}
const layer = Layer.scoped(TestPool, Pool.make({ acquire: makeTestResource().acquire, max: 2, name: "owned" }))

// A pool built in one test and left open (its scope is closed after all tests).
let captured: Pool.Pool<Resource, CreateError> | undefined
const leftOpen = Effect.runSync(Scope.make())
afterAll(() => Effect.runPromise(Scope.close(leftOpen, Exit.void)))

describe("RuntimeGuard", () => {
  it.effect("10. fibers of the owner pass: forked and daemon fibers", () =>
    Effect.gen(function*() {
      const pool = yield* Scope.extend(Pool.make({ acquire: makeTestResource().acquire, max: 1 }), leftOpen)
      captured = pool
      const daemon = yield* Effect.forkDaemon(Pool.use(pool, (r) => Effect.succeed(r.id)))
      assert.strictEqual(yield* Fiber.join(daemon), 1)
      const nested = Effect.flatMap(Effect.fork(Pool.use(pool, (r) => Effect.succeed(r.id))), Fiber.join)
      assert.strictEqual(yield* Fiber.join(yield* Effect.fork(nested)), 1)
    }))

  it.effect("10. a pool captured in another it.effect (another TestClock) fails at once with PoolRuntimeMismatch", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Pool.use(captured!, () => Effect.void))
      assert.strictEqual(error._tag, "PoolRuntimeMismatch")
      if (error._tag === "PoolRuntimeMismatch") assert.isUndefined(error.callerRuntime)
    }))

  it("10. ManagedRuntime A's pool used from runtime B or a bare runPromise fails at once; after A is disposed, PoolClosed", async () => {
    const a = ManagedRuntime.make(layer)
    const b = ManagedRuntime.make(Layer.scoped(TestPool, Pool.make({ acquire: makeTestResource().acquire, max: 1 })))
    const poolA = await a.runPromise(TestPool)
    assert.strictEqual(await a.runPromise(Pool.use(poolA, (r) => Effect.succeed(r.id))), 1)
    // B owns a pool too, so it has a runtime token of its own
    await b.runPromise(TestPool)
    const fromB = await b.runPromiseExit(Pool.use(poolA, () => Effect.void))
    assert.isTrue(Exit.isFailure(fromB))
    const errorB = Exit.isFailure(fromB) ? fromB.cause : undefined
    assert.include(String(errorB), "PoolRuntimeMismatch")
    const bare = await Effect.runPromise(Effect.flip(Pool.use(poolA, () => Effect.void)))
    assert.strictEqual(bare._tag, "PoolRuntimeMismatch")
    assert.include(bare.message, "pool \"owned\" belongs to runtime #")
    assert.include(bare.message, "provide the pool's Layer to this runtime instead of sharing the instance")
    await a.dispose()
    const afterDispose = await b.runPromise(Effect.flip(Pool.use(poolA, () => Effect.void)))
    assert.strictEqual(afterDispose._tag, "PoolClosed")
    await b.dispose()
  })

  it("10. programs run under Effect.provide(layer) own the pool the layer built", async () => {
    const id = await Effect.runPromise(
      Effect.flatMap(TestPool, (pool) => Pool.use(pool, (r) => Effect.succeed(r.id))).pipe(Effect.provide(layer))
    )
    assert.isAbove(id, 0)
  })

  it.effect("RuntimeGuard.guard runs the effect for the owner and fails for another runtime", () =>
    Effect.gen(function*() {
      const guard = yield* RuntimeGuard.make
      const guarded = RuntimeGuard.guard(guard, Effect.succeed("ok"), (caller) => `mismatch from ${caller?.id}`)
      assert.strictEqual(yield* guarded, "ok")
      const outside = yield* Effect.promise(() => Effect.runPromise(Effect.flip(guarded)))
      assert.strictEqual(outside, "mismatch from undefined")
    }).pipe(Effect.scoped))

  // A queue consumer, a scheduler, an HTTP router: a layer that captures the runtime while the
  // layers are built and runs callbacks with it later.
  class Consumer extends Context.Tag("Consumer")<Consumer, { readonly runtime: Runtime.Runtime<never> }>() {}
  const consumer = Layer.effect(Consumer, Effect.map(Effect.runtime<never>(), (runtime) => ({ runtime })))
  class Other extends Context.Tag("Other")<Other, Pool.Pool<Resource, CreateError>>() {}
  // Fresh layers per test: each with resources of its own, so the first lease gets #1.
  const poolLayer = () =>
    Layer.scoped(TestPool, Pool.make({ acquire: makeTestResource().acquire, max: 2, name: "app" }))
  const otherLayer = () =>
    Layer.scoped(Other, Pool.make({ acquire: makeTestResource().acquire, max: 1, name: "other" }))
  const leaseId = (pool: Pool.Pool<Resource, CreateError>) => Pool.use(pool, (r) => Effect.succeed(r.id))

  it("D17 a runtime captured by a sibling layer of the same ManagedRuntime (Layer.merge) owns the pool", async () => {
    const app = ManagedRuntime.make(Layer.mergeAll(poolLayer(), consumer))
    try {
      const pool = await app.runPromise(TestPool)
      const { runtime } = await app.runPromise(Consumer)
      assert.strictEqual(await Runtime.runPromise(runtime)(leaseId(pool)), 1)
      // a callback run later by the consumer, as a queue does
      const fiber = Runtime.runFork(runtime)(Effect.flatMap(Effect.sleep("1 millis"), () => leaseId(pool)))
      assert.strictEqual(await Runtime.runPromise(runtime)(Fiber.join(fiber)), 1)
      assert.strictEqual(await app.runPromise(leaseId(pool)), 1)
    } finally {
      await app.dispose()
    }
  })

  it("D17 two pools merged into one ManagedRuntime both belong to it", async () => {
    const app = ManagedRuntime.make(Layer.mergeAll(poolLayer(), otherLayer()))
    try {
      assert.strictEqual(await app.runPromise(Effect.flatMap(TestPool, leaseId)), 1)
      assert.strictEqual(await app.runPromise(Effect.flatMap(Other, leaseId)), 1)
    } finally {
      await app.dispose()
    }
  })

  it("D17 ManagedRuntimes built with one MemoMap co-own the pool they share; an unrelated runtime does not", async () => {
    const memoMap = Effect.runSync(Layer.makeMemoMap)
    const shared = poolLayer()
    const first = ManagedRuntime.make(shared, memoMap)
    const second = ManagedRuntime.make(Layer.mergeAll(shared, otherLayer(), consumer), memoMap)
    const unrelated = ManagedRuntime.make(Layer.scoped(TestPool, Pool.make({ acquire: makeTestResource().acquire })))
    try {
      const pool = await first.runPromise(TestPool)
      assert.strictEqual(await second.runPromise(TestPool), pool)
      assert.strictEqual(await first.runPromise(leaseId(pool)), 1)
      assert.strictEqual(await second.runPromise(leaseId(pool)), 1)
      assert.strictEqual(await second.runPromise(Effect.flatMap(Other, leaseId)), 1)
      const { runtime } = await second.runPromise(Consumer)
      assert.strictEqual(await Runtime.runPromise(runtime)(leaseId(pool)), 1)
      await unrelated.runPromise(TestPool)
      const mismatch = await unrelated.runPromise(Effect.flip(leaseId(pool)))
      assert.strictEqual(mismatch._tag, "PoolRuntimeMismatch")
      const bare = await Effect.runPromise(Effect.flip(leaseId(pool)))
      assert.strictEqual(bare._tag, "PoolRuntimeMismatch")
    } finally {
      await unrelated.dispose()
      await second.dispose()
      await first.dispose()
    }
  })
})
