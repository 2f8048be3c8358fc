import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { captureLogs } from "../../../test/support/logs.js"
import * as Pool from "../src/Pool.js"
import * as PoolError from "../src/PoolError.js"
import { makeTestResource } from "./utils/TestResource.js"

// A resource whose release takes `releaseMillis` and fails the holder's pending work, as
// closing a socket fails the statement running on it.
const slowResource = (releaseMillis: number) => {
  let next = 0
  const released: Array<number> = []
  const acquire = Effect.acquireRelease(
    Effect.flatMap(Deferred.make<void, string>(), (broken) => Effect.succeed({ id: ++next, broken })),
    (r) =>
      Effect.zipRight(
        Effect.sleep(releaseMillis),
        Effect.sync(() => released.push(r.id)).pipe(Effect.zipRight(Deferred.fail(r.broken, "socket closed")))
      )
  )
  return { acquire, released }
}

const elapsedOf = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* TestClock.currentTimeMillis
    const fiber = yield* Effect.fork(self)
    // advance the clock in 10 ms steps until the effect is done
    do {
      yield* TestClock.adjust("10 millis")
    } while ((yield* Fiber.poll(fiber))._tag === "None")
    yield* Fiber.join(fiber)
    return (yield* TestClock.currentTimeMillis) - start
  })

describe("Pool.close", () => {
  it.effect("7. new and waiting callers fail with PoolClosed at once", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(Pool.make({ acquire: resources.acquire, max: 1, name: "c" }), scope)
      const holder = yield* Effect.fork(Pool.use(pool, () => Effect.never))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* Effect.yieldNow()
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Effect.yieldNow()
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.strictEqual(error._tag, "PoolClosed")
      assert.include(error.message, "pool \"c\" is closed")
      assert.strictEqual((yield* Effect.flip(Pool.use(pool, () => Effect.void)))._tag, "PoolClosed")
      assert.strictEqual((yield* Effect.flip(Effect.scoped(Pool.get(pool))))._tag, "PoolClosed")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      yield* Fiber.interrupt(holder)
    }))

  it.effect("7. idle resources are released concurrently: close time does not grow with pool size", () =>
    Effect.gen(function*() {
      for (const size of [10, 100]) {
        const { acquire, released } = slowResource(200)
        const scope = yield* Scope.make()
        const pool = yield* Scope.extend(Pool.make({ acquire, min: size, max: size }), scope)
        yield* Pool.waitReady(pool, "1 second")
        const elapsed = yield* elapsedOf(Scope.close(scope, Exit.void))
        assert.strictEqual(elapsed, 200, `size ${size}`)
        assert.strictEqual(released.length, size)
      }
    }))

  it.effect("7. leases still out after closeTimeout are force-released; the holder gets LeaseRevoked", () =>
    Effect.gen(function*() {
      const { acquire, released } = slowResource(50)
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(Pool.make({ acquire, max: 3, closeTimeout: "500 millis", name: "f" }), scope)
      const holders = yield* Effect.forEach(
        [1, 2, 3],
        () => Effect.fork(Pool.use(pool, (r) => Deferred.await(r.broken))),
        { concurrency: "unbounded" }
      )
      yield* Effect.yieldNow()
      assert.strictEqual((yield* Pool.stats(pool)).inUse, 3)
      const elapsed = yield* elapsedOf(Scope.close(scope, Exit.void))
      // closeTimeout, then the resources' own (concurrent) finalizers
      assert.strictEqual(elapsed, 550)
      assert.strictEqual(released.length, 3)
      for (const holder of holders) {
        const error = yield* Effect.flip(Fiber.join(holder))
        assert.isTrue(PoolError.isPoolError(error) && error._tag === "LeaseRevoked")
        assert.include(
          (error as PoolError.LeaseRevoked).message,
          "closed while this lease was still held after closeTimeout (500 ms)"
        )
      }
      assert.strictEqual((yield* Pool.stats(pool)).retired.closed, 3)
    }))

  it.effect("7. closeTimeout 0 force-releases at once; leases returned in time are released normally", () =>
    Effect.gen(function*() {
      const { acquire, released } = slowResource(0)
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(Pool.make({ acquire, max: 1, closeTimeout: 0 }), scope)
      const holder = yield* Effect.fork(Pool.use(pool, (r) => Deferred.await(r.broken)))
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(Fiber.join(holder))
      assert.isTrue(PoolError.isPoolError(error) && error._tag === "LeaseRevoked")
      assert.deepStrictEqual(released, [1])
    }))

  it.effect("7. close is idempotent and safe to call concurrently; every resource is released exactly once", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(Pool.make({ acquire: resources.acquire, min: 4, max: 4 }), scope)
      yield* Pool.waitReady(pool, "1 second")
      yield* Effect.all([Pool.close(pool), Pool.close(pool), Scope.close(scope, Exit.void)], {
        concurrency: "unbounded"
      })
      yield* Pool.close(pool)
      assert.strictEqual(resources.alive.size, 0)
      assert.deepStrictEqual([...resources.releases.values()], [1, 1, 1, 1])
      assert.isTrue((yield* Pool.stats(pool)).closed)
    }))

  it.effect("7. a resource being created when the pool closes is released, not leaked", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const gate = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(
        Pool.make({ acquire: Effect.zipRight(Deferred.await(gate), resources.acquire), max: 1 }),
        scope
      )
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* Effect.yieldNow()
      assert.strictEqual((yield* Pool.stats(pool)).pending, 1)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual((yield* Effect.flip(Fiber.join(waiter)))._tag, "PoolClosed")
      assert.strictEqual(resources.alive.size, 0)
    }))

  it.effect("D3 a close started by an interrupted fiber still waits closeTimeout, then revokes the leases still out", () =>
    Effect.gen(function*() {
      const { acquire, released } = slowResource(0)
      const opened = yield* Deferred.make<Fiber.RuntimeFiber<unknown, unknown>>()
      // The program owns the pool; a lease is held outside its fiber tree (a daemon).
      const program = Effect.gen(function*() {
        const pool = yield* Pool.make({ acquire, max: 2, closeTimeout: "500 millis" })
        const holder = yield* Effect.forkDaemon(Pool.use(pool, (r) => Deferred.await(r.broken)))
        yield* Effect.yieldNow()
        yield* Deferred.succeed(opened, holder)
        return yield* Effect.never
      }).pipe(Effect.scoped)
      const main = yield* Effect.fork(program)
      const holder = yield* Deferred.await(opened)
      // as runMain does on SIGTERM: the program is interrupted and its scope closes the pool
      const interrupting = yield* Effect.fork(Fiber.interrupt(main))
      yield* TestClock.adjust("100 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(interrupting)), "close returned before closeTimeout")
      assert.isTrue(Option.isNone(yield* Fiber.poll(holder)))
      yield* TestClock.adjust("400 millis")
      yield* Fiber.join(interrupting)
      const error = yield* Effect.flip(Fiber.join(holder))
      assert.strictEqual((error as { _tag?: string })._tag, "LeaseRevoked")
      assert.deepStrictEqual(released, [1])
    }))

  it.effect("D5 close awaits the pool's background work, bounded: a creation that cannot be interrupted and a release that hangs", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      let creating = 0
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(
        Pool.make({
          name: "stuck",
          // the second creation never ends and cannot be interrupted
          acquire: Effect.suspend(() => ++creating === 1 ? resources.acquire : Effect.uninterruptible(Effect.never)),
          max: 2,
          closeTimeout: "100 millis",
          releaseTimeout: "1 second"
        }),
        scope
      )
      yield* Pool.use(pool, () => Effect.void)
      const waiter = yield* Effect.fork(Effect.scoped(Effect.zipRight(Pool.get(pool), Pool.get(pool))))
      yield* Effect.yieldNow()
      assert.strictEqual((yield* Pool.stats(pool)).pending, 1)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("900 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(closing)))
      yield* TestClock.adjust("200 millis")
      assert.isTrue(Option.isSome(yield* Fiber.poll(closing)), "close still waits after releaseTimeout")
      assert.strictEqual(resources.alive.size, 0)
      const warning = logs.lines.find((l) => l.level === "WARN" && l.message.includes("releaseTimeout"))
      assert.strictEqual(warning?.annotations.pool, "stuck")
      yield* Fiber.interrupt(waiter)
    }).pipe(logs.provide)
  })
})
