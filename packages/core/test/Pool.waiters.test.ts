import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Pool from "../src/Pool.js"
import { makeTestResource } from "./utils/TestResource.js"

// Forks a fiber that leases a resource and holds it until `release` is completed.
const hold = <A, E>(pool: Pool.Pool<A, E>, release: Deferred.Deferred<void>, onLease?: (a: A) => void) =>
  Effect.fork(Pool.use(pool, (a) => Effect.zipRight(Effect.sync(() => onLease?.(a)), Deferred.await(release))))

describe("Pool waiting", () => {
  it.effect("3. waiters are served strictly in FIFO order", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1 })
      const order: Array<number> = []
      const first = yield* Deferred.make<void>()
      const holder = yield* hold(pool, first)
      yield* Effect.yieldNow()
      const waiters = []
      for (let i = 0; i < 5; i++) {
        waiters.push(yield* Effect.fork(Pool.use(pool, () => Effect.sync(() => order.push(i)))))
        yield* Effect.yieldNow()
      }
      assert.strictEqual((yield* Pool.stats(pool)).waiting, 5)
      yield* Deferred.succeed(first, void 0)
      yield* Fiber.join(holder)
      yield* Fiber.joinAll(waiters)
      assert.deepStrictEqual(order, [0, 1, 2, 3, 4])
    }).pipe(Effect.scoped))

  it.effect("3. a waiter interrupted right after a hand-off never loses the resource (psycopg #509)", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1 })
      const release = yield* Deferred.make<void>()
      const holder = yield* hold(pool, release)
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.never))
      yield* Effect.yieldNow()
      // hand the resource to the waiter and interrupt it in the same step
      yield* Deferred.succeed(release, void 0)
      yield* Fiber.join(holder)
      yield* Fiber.interrupt(waiter)
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.inUse, 0)
      assert.strictEqual(stats.idle, 1)
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
    }).pipe(Effect.scoped))

  it.effect("3. a waiter that times out in the instant of a hand-off gives the resource back", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1, acquireTimeout: "1 second" })
      const holder = yield* Effect.fork(Pool.use(pool, () => Effect.sleep("1 second")))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Effect.either(Pool.use(pool, () => Effect.never)))
      yield* Effect.yieldNow()
      // the holder returns and the waiter's timer fires at the same instant
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(holder)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiter)
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.inUse, 0)
      assert.strictEqual(stats.size, 1)
      assert.strictEqual(stats.idle, 1)
    }).pipe(Effect.scoped))

  it.effect("3. acquireTimeout fails with PoolTimeout carrying name, elapsed, size, max, inUse, idle and waiting", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 2, acquireTimeout: "5 seconds", name: "app" })
      const release = yield* Deferred.make<void>()
      yield* hold(pool, release)
      yield* hold(pool, release)
      yield* Effect.yieldNow()
      const waiters = yield* Effect.forEach([1, 2], () => Effect.fork(Pool.use(pool, () => Effect.void)))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("5 seconds")
      const error = yield* Effect.flip(Fiber.join(waiters[0]!))
      assert.strictEqual(error._tag, "PoolTimeout")
      if (error._tag !== "PoolTimeout") return
      assert.strictEqual(error.pool, "app")
      assert.strictEqual(error.elapsedMillis, 5000)
      assert.strictEqual(error.size, 2)
      assert.strictEqual(error.max, 2)
      assert.strictEqual(error.inUse, 2)
      assert.strictEqual(error.idle, 0)
      assert.strictEqual(error.holders.length, 2)
      assert.include(error.message, "pool \"app\": no resource after 5000 ms (size 2/2, in use 2, idle 0, waiting")
      assert.include(error.message, "raise max or acquireTimeout")
      yield* Deferred.succeed(release, void 0)
    }).pipe(Effect.scoped))

  it.effect("3. a PoolTimeout while creation fails carries the last creation error as cause", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 2, acquireTimeout: "3 seconds" })
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* TestClock.adjust("3 seconds")
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.strictEqual(error._tag, "PoolTimeout")
      if (error._tag !== "PoolTimeout") return
      assert.strictEqual((error.cause as any)?._tag, "CreateError")
      assert.include(error.message, "creating resources fails")
    }).pipe(Effect.scoped))

  it.effect("3. maxWaiting fails the next caller with PoolFull at once", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1, maxWaiting: 2, name: "busy" })
      const release = yield* Deferred.make<void>()
      yield* hold(pool, release)
      yield* Effect.yieldNow()
      yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* Effect.yieldNow()
      const error = yield* Effect.flip(Pool.use(pool, () => Effect.void))
      assert.strictEqual(error._tag, "PoolFull")
      if (error._tag === "PoolFull") {
        assert.strictEqual(error.waiting, 2)
        assert.include(error.message, "already 2 requests waiting (maxWaiting 2)")
      }
      assert.strictEqual((yield* Pool.stats(pool)).rejected, 1)
      yield* Deferred.succeed(release, void 0)
    }).pipe(Effect.scoped))

  // A check that hangs (a connection whose SELECT 1 never answers) must not hold the caller.
  const hangingCheck = () => {
    let hang = false
    const resources = makeTestResource()
    const options = {
      acquire: resources.acquire,
      max: 1,
      checkAfterIdle: 0,
      closeTimeout: 0,
      check: (r: { readonly id: number }) => hang && r.id === 1 ? Effect.never : Effect.void
    }
    return { options, resources, hang: () => (hang = true) }
  }

  it.effect("D14 the checkout check is interruptible: an Effect.timeout around the lease returns on time", () =>
    Effect.gen(function*() {
      const { hang, options, resources } = hangingCheck()
      const pool = yield* Pool.make({ ...options, acquireTimeout: "30 seconds" })
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
      yield* TestClock.adjust("10 millis")
      hang()
      const fiber = yield* Effect.fork(Effect.timeout(Pool.use(pool, (r) => Effect.succeed(r.id)), "300 millis"))
      yield* TestClock.adjust("300 millis")
      const exit = Option.getOrUndefined(yield* Fiber.poll(fiber))
      assert.isDefined(exit, "still checking after the caller's 300 ms timeout")
      assert.strictEqual((yield* Effect.flip(exit!))._tag, "TimeoutException")
      // the resource whose check was cut short is retired: its state is unknown
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, checkFailed: stats.retired["check-failed"] }, {
        inUse: 0,
        checkFailed: 1
      })
      assert.isFalse(resources.alive.has(1))
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 2)
    }).pipe(Effect.scoped))

  it.effect("D14 the checkout check is bounded by acquireTimeout: PoolTimeout, counted, and the resource retired", () =>
    Effect.gen(function*() {
      const { hang, options } = hangingCheck()
      const pool = yield* Pool.make({ ...options, acquireTimeout: "1 second", name: "checked" })
      yield* Pool.use(pool, () => Effect.void)
      yield* TestClock.adjust("10 millis")
      hang()
      const fiber = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* TestClock.adjust("1 second")
      const exit = Option.getOrUndefined(yield* Fiber.poll(fiber))
      assert.isDefined(exit, "still checking after acquireTimeout")
      const error = yield* Effect.flip(exit!)
      assert.strictEqual(error._tag, "PoolTimeout")
      assert.include(error.message, "pool \"checked\": no resource after 1000 ms")
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({
        inUse: stats.inUse,
        timeouts: stats.timeouts,
        checkFailed: stats.retired["check-failed"]
      }, {
        inUse: 0,
        timeouts: 1,
        checkFailed: 1
      })
    }).pipe(Effect.scoped))

  it.effect("D14 a caller whose check failed and who then waits keeps its original deadline", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      let slow = false
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        max: 2,
        checkAfterIdle: 0,
        closeTimeout: 0,
        acquireTimeout: "1 second",
        // #2's check takes 400 ms, then fails
        check: (r) =>
          slow && r.id === 2 ? Effect.zipRight(Effect.sleep("400 millis"), Effect.fail("dead")) : Effect.void
      })
      const release = yield* Deferred.make<void>()
      // returned in reverse order: #1 is on top of the idle stack, #2 under it
      yield* Effect.scoped(Effect.all([Pool.get(pool), Pool.get(pool)]))
      yield* TestClock.adjust("10 millis")
      slow = true
      resources.failing = true
      yield* hold(pool, release)
      yield* Effect.yieldNow()
      // the caller checks #2 (fails after 400 ms), then waits while creation fails
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* TestClock.adjust("400 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* TestClock.adjust("600 millis")
      const exit = Option.getOrUndefined(yield* Fiber.poll(waiter))
      assert.isDefined(exit, "still waiting after acquireTimeout from its request")
      const error = yield* Effect.flip(exit!)
      assert.strictEqual(error._tag, "PoolTimeout")
      if (error._tag === "PoolTimeout") assert.strictEqual(error.elapsedMillis, 1000)
      yield* Deferred.succeed(release, void 0)
    }).pipe(Effect.scoped))
})
