import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Pool from "../src/Pool.js"
import * as PoolError from "../src/PoolError.js"
import * as PoolStats from "../src/PoolStats.js"
import { makeTestResource } from "./utils/TestResource.js"

describe("Pool.make", () => {
  it.effect("1. options are validated up front: the error names the field and the allowed range", () =>
    Effect.gen(function*() {
      const { acquire } = makeTestResource()
      const cases: Array<[Partial<Pool.Options<any, any, any>>, string, string]> = [
        [{ max: 0 }, "max", "an integer >= 1"],
        [{ min: -1 }, "min", "an integer >= 0"],
        [{ min: 1.5 }, "min", "an integer >= 0"],
        [{ min: 5, max: 2 }, "max", ">= min (5)"],
        [{ acquireTimeout: -1 }, "acquireTimeout", "a finite duration > 0"],
        [{ acquireTimeout: "-5 seconds" }, "acquireTimeout", "a finite duration > 0"],
        [{ acquireTimeout: 0 }, "acquireTimeout", "a finite duration > 0"],
        [{ idleTimeout: Number.NaN }, "idleTimeout", "a finite duration > 0"],
        [{ maxLifetime: "forever" as any }, "maxLifetime", "a finite duration > 0"],
        [{ maxLifetime: Infinity }, "maxLifetime", "a finite duration > 0"],
        [{ closeTimeout: -1 }, "closeTimeout", "a finite duration >= 0"],
        [{ lifetimeJitter: 0.9 }, "lifetimeJitter", "a fraction in [0, 0.5]"],
        [{ maxUses: 0 }, "maxUses", "an integer >= 1, or Infinity"],
        [{ maxWaiting: -1 }, "maxWaiting", "an integer >= 0"],
        [{ leakThreshold: 0 }, "leakThreshold", "a finite duration > 0"]
      ]
      for (const [options, field, expected] of cases) {
        const error = yield* Effect.flip(Effect.scoped(Pool.make({ acquire, name: "cfg", ...options })))
        assert.instanceOf(error, PoolError.PoolConfigError)
        assert.strictEqual(error.field, field)
        assert.isTrue(error.expected.startsWith(expected), error.expected)
        assert.include(error.message, `pool "cfg": ${field} must be ${expected}`)
        // a duration's error shows the accepted format
        if (expected.includes("duration")) assert.include(error.message, "such as \"5 seconds\" or \"500 millis\"")
      }
      // closeTimeout 0 is allowed (force-release at once); it is not clamped.
      const pool = yield* Effect.scoped(Pool.make({ acquire, closeTimeout: 0 }))
      assert.isTrue(Pool.isPool(pool))
    }))

  it.effect("1. use leases a resource and returns it; the resource's finalizer is its release", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      yield* Effect.scoped(Effect.gen(function*() {
        const pool = yield* Pool.make({ acquire: resources.acquire, max: 2 })
        const id = yield* Pool.use(pool, (r) => Effect.succeed(r.id))
        assert.strictEqual(id, 1)
        // the same idle resource again, not a new one
        assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
        const failed = yield* Effect.exit(Pool.use(pool, () => Effect.fail("boom")))
        assert.deepStrictEqual(failed, Exit.fail("boom"))
        const stats = yield* Pool.stats(pool)
        assert.strictEqual(stats.size, 1)
        assert.strictEqual(stats.idle, 1)
        assert.strictEqual(stats.inUse, 0)
        assert.strictEqual(resources.alive.size, 1)
      }))
      assert.strictEqual(resources.alive.size, 0)
      assert.strictEqual(resources.releases.get(1), 1)
    }))

  it.effect("1. get holds the lease until its scope closes", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 2 })
      yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* Pool.get(pool)
        const b = yield* Pool.get(pool)
        assert.notStrictEqual(a.id, b.id)
        assert.strictEqual((yield* Pool.stats(pool)).inUse, 2)
      }))
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.inUse, 0)
      assert.strictEqual(stats.idle, 2)
    }).pipe(Effect.scoped))
})

describe("Pool sizing", () => {
  it.effect("2. prefills to min in the background on open; waitReady resolves once min are open", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, min: 3, max: 5 })
      yield* Pool.waitReady(pool, "1 second")
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.size, 3)
      assert.strictEqual(stats.idle, 3)
      assert.strictEqual(resources.counts.created, 3)
    }).pipe(Effect.scoped))

  it.effect("2. waitReady fails with PoolTimeout carrying the creation error when min cannot be reached", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const pool = yield* Pool.make({ acquire: resources.acquire, min: 2, max: 2, name: "ready" })
      const fiber = yield* Effect.fork(Pool.waitReady(pool, "2 seconds"))
      yield* TestClock.adjust("2 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "PoolTimeout")
      if (error._tag === "PoolTimeout") {
        assert.strictEqual(error.size, 0)
        assert.strictEqual((error.cause as any)._tag, "CreateError")
      }
    }).pipe(Effect.scoped))

  it.effect("2. resize grows to the new min at once and shrinks idle resources to the new max", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, min: 1, max: 2 })
      yield* Pool.waitReady(pool, "1 second")
      yield* Pool.resize(pool, { min: 4, max: 6 })
      yield* Pool.waitReady(pool, "1 second")
      assert.strictEqual((yield* Pool.stats(pool)).size, 4)
      yield* Pool.resize(pool, { min: 0, max: 2 })
      yield* Effect.yieldNow()
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.size, 2)
      assert.strictEqual(stats.max, 2)
      assert.strictEqual(stats.retired.idle, 2)
      const error = yield* Effect.flip(Pool.resize(pool, { min: 3, max: 1 }))
      assert.strictEqual(error.field, "max")
    }).pipe(Effect.scoped))
})

describe("Pool readiness", () => {
  it.effect("D15 waitReady is woken by close and fails with PoolClosed, not PoolTimeout, and is not counted as a timeout", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(Pool.make({ acquire: resources.acquire, min: 2, max: 2, name: "r" }), scope)
      const ready = yield* Effect.fork(Pool.waitReady(pool, "10 seconds"))
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      // a few scheduler hops for the woken waitReady to end; no time passes
      yield* Effect.repeatN(Effect.yieldNow(), 4)
      const exit = Option.getOrUndefined(yield* Fiber.poll(ready))
      assert.isDefined(exit, "waitReady still waits after close")
      const error = yield* Effect.flip(exit!)
      assert.strictEqual(error._tag, "PoolClosed")
      assert.strictEqual((yield* Pool.stats(pool)).timeouts, 0)
      // and after close, at once
      assert.strictEqual((yield* Effect.flip(Pool.waitReady(pool, "10 seconds")))._tag, "PoolClosed")
    }))
})

describe("Pool.stats", () => {
  it.effect("9. stats count requests, waits, timeouts, creations and usage; metrics follow OpenTelemetry's db.client.connection.* conventions", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1, name: "metered", acquireTimeout: "1 second" })
      yield* Pool.use(pool, () => TestClock.adjust("100 millis"))
      const holder = yield* Effect.fork(Pool.use(pool, () => Effect.never))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Effect.flip(Fiber.join(waiter)))._tag, "PoolTimeout")
      yield* Fiber.interrupt(holder)
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.requests, 3)
      // the first request waited for the first creation too (min 0)
      assert.strictEqual(stats.requestsQueued, 2)
      assert.strictEqual(stats.timeouts, 1)
      assert.strictEqual(stats.waitTimeMax, 1000)
      assert.strictEqual(stats.created, 1)
      assert.strictEqual(stats.size, 1)
      assert.strictEqual(stats.inUse, 0)
      assert.isAtLeast(stats.usageTimeTotal, 1100)
      const metrics = PoolStats.metricsOf("metered")
      assert.strictEqual((yield* Metric.value(metrics.idle)).value, 1)
      assert.strictEqual((yield* Metric.value(metrics.used)).value, 0)
      assert.strictEqual((yield* Metric.value(metrics.max)).value, 1)
      assert.strictEqual((yield* Metric.value(metrics.idleMax)).value, 1)
      assert.strictEqual((yield* Metric.value(metrics.idleMin)).value, 0)
      assert.strictEqual((yield* Metric.value(metrics.pendingRequests)).value, 0)
      assert.strictEqual((yield* Metric.value(metrics.timeouts)).count, 1)
      // durations in seconds, as the conventions say
      const uses = yield* Metric.value(metrics.useTime)
      assert.isTrue(MetricState.isHistogramState(uses))
      assert.strictEqual(uses.count, 2)
      assert.strictEqual(uses.min, 0.1)
      const waits = yield* Metric.value(metrics.waitTime)
      assert.strictEqual(waits.count, 2)
      assert.strictEqual(waits.max, 1)
      const creations = yield* Metric.value(metrics.createTime)
      assert.strictEqual(creations.count, 1)
      // the series are the pool's: the names and attributes an OpenTelemetry exporter sees
      const pairs = (yield* Metric.snapshot).filter((pair) =>
        pair.metricKey.tags.some((tag) => tag.key === "db.client.connection.pool.name" && tag.value === "metered")
      )
      assert.deepStrictEqual(
        [...new Set(pairs.map((pair) => pair.metricKey.name))].sort(),
        [
          "db.client.connection.count",
          "db.client.connection.create_time",
          "db.client.connection.idle.max",
          "db.client.connection.idle.min",
          "db.client.connection.max",
          "db.client.connection.pending_requests",
          "db.client.connection.timeouts",
          "db.client.connection.use_time",
          "db.client.connection.wait_time"
        ]
      )
      const states = pairs.filter((pair) => pair.metricKey.name === "db.client.connection.count")
        .map((pair) => pair.metricKey.tags.find((tag) => tag.key === "db.client.connection.state")?.value).sort()
      assert.deepStrictEqual(states, ["idle", "used"])
    }).pipe(Effect.scoped))
})
