import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { captureLogs } from "../../../test/support/logs.js"
import * as Lifetime from "../src/internal/lifetime.js"
import * as Pool from "../src/Pool.js"
import { makeTestResource } from "./utils/TestResource.js"

describe("Pool ageing", () => {
  it.effect("4. idleTimeout shrinks idle resources toward min, never below it", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, min: 1, max: 4, idleTimeout: "1 minute" })
      yield* Effect.scoped(Effect.all([Pool.get(pool), Pool.get(pool), Pool.get(pool)]))
      assert.strictEqual((yield* Pool.stats(pool)).size, 3)
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual((yield* Pool.stats(pool)).size, 3)
      yield* TestClock.adjust("30 seconds")
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.size, 1)
      assert.strictEqual(stats.retired.idle, 2)
      assert.strictEqual(resources.alive.size, 1)
    }).pipe(Effect.scoped))

  it("4. maxLifetime is reduced by a jitter of up to lifetimeJitter, so resources do not expire together", () => {
    const lifetime = 60_000
    const samples = [0, 0.25, 0.5, 0.999].map((r) => Lifetime.expiresAt(1000, lifetime, 0.05, r))
    assert.deepStrictEqual(samples, [61_000, 60_250, 59_500, 58_003])
    for (const s of samples) assert.isTrue(s <= 1000 + lifetime && s > 1000 + lifetime * 0.95)
  })

  it.effect("4. maxLifetime retires idle resources and refills to min", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        min: 2,
        max: 2,
        maxLifetime: "10 minutes",
        lifetimeJitter: 0.05
      })
      yield* Pool.waitReady(pool, "1 second")
      yield* TestClock.adjust("9 minutes")
      assert.strictEqual((yield* Pool.stats(pool)).retired.expired, 0)
      yield* TestClock.adjust("1 minute")
      yield* Effect.yieldNow()
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.retired.expired, 2)
      assert.strictEqual(stats.size, 2)
      assert.deepStrictEqual([...resources.alive].sort(), [3, 4])
    }).pipe(Effect.scoped))

  it.effect("4. a leased resource is never retired under its holder; it is retired when returned", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1, maxLifetime: "1 minute", lifetimeJitter: 0 })
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Pool.use(pool, () => Deferred.await(release)))
      yield* TestClock.adjust("5 minutes")
      assert.isTrue(resources.alive.has(1))
      assert.strictEqual((yield* Pool.stats(pool)).retired.expired, 0)
      yield* Deferred.succeed(release, void 0)
      yield* Fiber.join(holder)
      yield* Effect.yieldNow()
      assert.isFalse(resources.alive.has(1))
      assert.strictEqual((yield* Pool.stats(pool)).retired.expired, 1)
    }).pipe(Effect.scoped))

  it.effect("4. maxUses retires a resource after that many leases", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1, maxUses: 3 })
      const ids = []
      for (let i = 0; i < 7; i++) ids.push(yield* Pool.use(pool, (r) => Effect.succeed(r.id)))
      assert.deepStrictEqual(ids, [1, 1, 1, 2, 2, 2, 3])
    }).pipe(Effect.scoped))
})

describe("Pool health", () => {
  it.effect("5. check runs on checkout only after checkAfterIdle; a failed check retires and tries the next", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const checked: Array<number> = []
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        max: 3,
        checkAfterIdle: "500 millis",
        check: (r) =>
          Effect.suspend(() => {
            checked.push(r.id)
            return r.dead ? Effect.fail("dead") : Effect.void
          })
      })
      const [a, b] = yield* Effect.scoped(Effect.all([Pool.get(pool), Pool.get(pool)]))
      // the idle stack is LIFO: the resource returned last is leased first, unchecked (not idle long)
      const top = yield* Pool.use(pool, (r) => Effect.succeed(r))
      const other = top === a ? b! : a!
      assert.deepStrictEqual(checked, [])
      yield* TestClock.adjust("501 millis")
      top.dead = true
      // its check fails, it is retired, and the next one is checked and leased
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), other.id)
      assert.deepStrictEqual(checked, [top.id, other.id])
      yield* Effect.yieldNow()
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.retired["check-failed"], 1)
      assert.isFalse(resources.alive.has(top.id))
    }).pipe(Effect.scoped))

  it.effect("5. reset runs on return; a failed reset retires the resource", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        max: 1,
        reset: (r) => r.dead ? Effect.fail("dirty") : Effect.void
      })
      yield* Pool.use(pool, () => Effect.void)
      yield* Pool.use(pool, (r) => Effect.sync(() => r.dead = true))
      yield* Effect.yieldNow()
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.retired["reset-failed"], 1)
      assert.strictEqual(stats.size, 0)
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 2)
    }).pipe(Effect.scoped))

  it.effect("5. isAlive retires dead resources on return and on checkout", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 2, isAlive: (r) => !r.dead })
      yield* Pool.use(pool, (r) => Effect.sync(() => r.dead = true))
      const [x] = yield* Effect.scoped(Effect.all([Pool.get(pool)]))
      x!.dead = true
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 3)
      assert.strictEqual((yield* Pool.stats(pool)).retired.dead, 2)
    }).pipe(Effect.scoped))

  it.effect("5. onCreate runs once per new resource; invalidate retires with its reason; every retirement is logged with the pool name", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      const created: Array<number> = []
      const pool = yield* Pool.make({
        name: "hooks",
        acquire: resources.acquire,
        max: 2,
        onCreate: (r) => Effect.sync(() => created.push(r.id))
      })
      yield* Pool.use(pool, () => Effect.void)
      yield* Pool.use(pool, (r) => Pool.invalidate(pool, r))
      yield* Pool.use(pool, () => Effect.void)
      yield* Effect.yieldNow()
      assert.deepStrictEqual(created, [1, 2])
      assert.strictEqual((yield* Pool.stats(pool)).retired.invalidated, 1)
      const retired = logs.lines.find((l) => l.message.includes("retired resource #1"))
      assert.strictEqual(retired?.annotations.pool, "hooks")
      assert.strictEqual(retired?.annotations.reason, "invalidated")
      assert.strictEqual(retired?.level, "INFO")
    }).pipe(Effect.scoped, logs.provide)
  })

  it.effect("5. drain retires idle resources at once and leased ones on return, then refills to min", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, min: 2, max: 2 })
      yield* Pool.waitReady(pool, "1 second")
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Pool.use(pool, () => Deferred.await(release)))
      yield* Effect.yieldNow()
      yield* Pool.drain(pool)
      yield* Effect.yieldNow()
      assert.strictEqual((yield* Pool.stats(pool)).retired.invalidated, 1)
      yield* Deferred.succeed(release, void 0)
      yield* Fiber.join(holder)
      yield* Pool.waitReady(pool, "1 second")
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.retired.invalidated, 2)
      assert.strictEqual(stats.size, 2)
      assert.deepStrictEqual([...resources.alive].sort(), [3, 4])
    }).pipe(Effect.scoped))
})
