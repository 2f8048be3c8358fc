/**
 * Shared leases (`Pool.useShared` with `PoolOptions.share`): who joins which resource and when,
 * FIFO against exclusive callers, the end of the last lease (reset, invalidate, maxUses), each
 * lease measured on its own, user code that misbehaves inside a shared lease, hand-off races and
 * close. All under the TestClock; fibers progress by `settle` (scheduler hops), never by sleeps.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { captureLogs } from "../../../test/support/logs.js"
import * as Pool from "../src/Pool.js"
import * as PoolError from "../src/PoolError.js"
import * as PoolStats from "../src/PoolStats.js"
import { CreateError, makeTestResource, type Resource } from "./utils/TestResource.js"

// closeTimeout 0 in the tests' pools: a failed assertion ends the test at once (its close
// revokes the leases still held) instead of waiting for a TestClock that nobody advances.
const settle = Effect.forEach(Array.from({ length: 12 }), () => Effect.yieldNow(), { discard: true })

/**
 * Who holds which resource: each lease is recorded while `f` runs, and a lease that begins on a
 * resource held by an exclusive lease, or an exclusive one on a resource held at all, or more
 * than `maxHolders` at once, is a violation.
 */
const makeTracker = (maxHolders: number) => {
  const shared = new Map<number, number>()
  const exclusive = new Set<number>()
  const violations: Array<string> = []
  const log: Array<string> = []
  const enter = (name: string, r: Resource, how: "shared" | "exclusive") => {
    log.push(`${name}@${r.id}`)
    const n = shared.get(r.id) ?? 0
    if (exclusive.has(r.id)) violations.push(`${name} leased #${r.id} while an exclusive lease holds it`)
    if (how === "exclusive") {
      if (n > 0) violations.push(`${name} leased #${r.id} whole while ${n} sharer(s) hold it`)
      exclusive.add(r.id)
    } else {
      if (n + 1 > maxHolders) violations.push(`${name}: ${n + 1} holders of #${r.id} (maxHolders ${maxHolders})`)
      shared.set(r.id, n + 1)
    }
  }
  const leave = (r: Resource, how: "shared" | "exclusive") => {
    if (how === "exclusive") exclusive.delete(r.id)
    else shared.set(r.id, (shared.get(r.id) ?? 1) - 1)
  }
  /** A lease that records itself, then waits for `release` and returns the resource's id. */
  const hold =
    (name: string, release: Deferred.Deferred<void>, how: "shared" | "exclusive" = "shared") => (r: Resource) =>
      Effect.suspend(() => {
        enter(name, r, how)
        return Effect.as(Deferred.await(release), r.id)
      }).pipe(Effect.ensuring(Effect.sync(() => leave(r, how))))
  return { hold, log, violations, holders: (id: number) => shared.get(id) ?? 0 }
}

interface Load {
  /** The load each resource reports, by id (0 when unset); a function to misbehave. */
  readonly of: Map<number, unknown>
  calls: number
}

const makeLoad = (): Load & { readonly load: (r: Resource) => number | undefined } => {
  const self = {
    of: new Map<number, unknown>(),
    calls: 0,
    load: (r: Resource): number | undefined => {
      self.calls++
      const v = self.of.has(r.id) ? self.of.get(r.id) : 0
      return (typeof v === "function" ? v() : v) as number | undefined
    }
  }
  return self
}

const releases = (n: number) => Effect.all(Array.from({ length: n }, () => Deferred.make<void>()))

describe("Pool.useShared", () => {
  it.effect("share is validated: maxHolders an integer >= 2 (default 8), load a function", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const rejected: ReadonlyArray<[unknown, string]> = [
        [{ load: () => 0, maxHolders: 1 }, "share.maxHolders"],
        [{ load: () => 0, maxHolders: 2.5 }, "share.maxHolders"],
        [{ load: () => 0, maxHolders: Number.POSITIVE_INFINITY }, "share.maxHolders"],
        [{ maxHolders: 4 }, "share"],
        [null, "share"],
        [true, "share"]
      ]
      for (const [share, field] of rejected) {
        const error = yield* Effect.flip(Pool.make({ acquire: resources.acquire, share: share as any }))
        assert.strictEqual(error._tag, "PoolConfigError", JSON.stringify(share))
        assert.strictEqual(error.field, field, JSON.stringify(share))
      }
      // the default: 8 holders, then the ninth caller waits
      const load = makeLoad()
      const pool = yield* Pool.make({ acquire: resources.acquire, closeTimeout: 0, max: 1, share: { load: load.load } })
      const release = yield* Deferred.make<void>()
      const fibers = []
      for (let i = 0; i < 9; i++) {
        fibers.push(yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(release))))
        yield* settle
      }
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ shared: stats.sharedLeases, waiting: stats.waiting }, { shared: 7, waiting: 1 })
      yield* Deferred.succeed(release, void 0)
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.scoped))

  it.effect("1. without share, useShared is use: a second caller waits for the first", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, closeTimeout: 0, max: 1 })
      const t = makeTracker(1)
      const [a, b] = yield* releases(2)
      const first = yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))
      yield* settle
      const second = yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!)))
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1"])
      assert.strictEqual((yield* Pool.stats(pool)).waiting, 1)
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      assert.strictEqual(yield* Fiber.join(first), 1)
      assert.strictEqual(yield* Fiber.join(second), 1)
      assert.deepStrictEqual(t.log, ["a@1", "b@1"])
      assert.strictEqual((yield* Pool.stats(pool)).sharedLeases, 0)
      assert.deepStrictEqual(t.violations, [])
    }).pipe(Effect.scoped))

  it.effect("2. an idle resource is leased alone; while the pool can grow, a second caller gets a new one", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        min: 1,
        max: 2,
        share: { load: load.load }
      })
      yield* Pool.waitReady(pool, "1 second")
      const t = makeTracker(8)
      const [a, b] = yield* releases(2)
      const first = yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1"])
      assert.strictEqual(resources.counts.created, 1)
      const second = yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!)))
      yield* settle
      // a new resource, not a join
      assert.deepStrictEqual(t.log, ["a@1", "b@2"])
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.sharedLeases, 0)
      assert.strictEqual(stats.size, 2)
      assert.strictEqual(stats.inUse, 2)
      assert.strictEqual(load.calls, 0)
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], [1, 2])
      assert.deepStrictEqual(t.violations, [])
    }).pipe(Effect.scoped))

  it.effect("3. at max, callers join the least loaded resource (ties: fewer sharers) up to maxHolders, then wait", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        min: 2,
        max: 2,
        share: { load: load.load, maxHolders: 3 }
      })
      yield* Pool.waitReady(pool, "1 second")
      const t = makeTracker(3)
      const rel = yield* releases(8)
      const fibers: Array<Fiber.RuntimeFiber<number, unknown>> = []
      const start = (name: string, i: number) =>
        Effect.gen(function*() {
          fibers.push(yield* Effect.fork(Pool.useShared(pool, t.hold(name, rel[i]!))))
          yield* settle
        })
      yield* start("a", 0) // idle, the most recently used
      yield* start("b", 1) // idle
      const [ra, rb] = [Number(t.log[0]!.split("@")[1]), Number(t.log[1]!.split("@")[1])]
      assert.notStrictEqual(ra, rb)
      load.of.set(ra, 5)
      load.of.set(rb, 1)
      yield* start("c", 2) // least loaded: rb
      assert.strictEqual(t.log[2], `c@${rb}`)
      load.of.set(rb, 5)
      yield* start("d", 3) // a tie: ra has 1 sharer, rb 2
      assert.strictEqual(t.log[3], `d@${ra}`)
      load.of.set(ra, 0)
      yield* start("e", 4) // ra is the least loaded: its third holder
      assert.strictEqual(t.log[4], `e@${ra}`)
      load.of.set(ra, -10)
      yield* start("f", 5) // ra is full (maxHolders 3), however lightly loaded
      assert.strictEqual(t.log[5], `f@${rb}`)
      yield* start("g", 6) // both full: g waits
      assert.strictEqual(t.log.length, 6)
      let stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.waiting, 1)
      assert.strictEqual(stats.sharedLeases, 4)
      assert.strictEqual(stats.inUse, 2)
      assert.strictEqual(t.holders(ra), 3)
      assert.strictEqual(t.holders(rb), 3)
      // c leaves rb: the waiting caller joins rb in its place
      yield* Deferred.succeed(rel[2]!, void 0)
      yield* settle
      assert.strictEqual(t.log[6], `g@${rb}`)
      stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.waiting, 0)
      assert.strictEqual(stats.sharedLeases, 5)
      for (const r of rel) yield* Deferred.succeed(r, void 0)
      yield* Fiber.joinAll(fibers)
      stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle }, { inUse: 0, idle: 2 })
      assert.deepStrictEqual(t.violations, [])
    }).pipe(Effect.scoped))

  const refusals: ReadonlyArray<[string, unknown]> = [
    ["undefined", undefined],
    ["NaN", Number.NaN],
    ["a string", "3"],
    ["null", null],
    [
      "a throw",
      () => {
        throw new Error("load exploded")
      }
    ]
  ]

  it.effect("4. a load of undefined, NaN, a non-number or a throw takes no more joins; the caller goes elsewhere or waits", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        min: 2,
        max: 2,
        share: { load: load.load }
      })
      yield* Pool.waitReady(pool, "1 second")
      const t = makeTracker(8)
      const [a, b, rest] = yield* releases(3)
      const holders = [
        yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!))),
        yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!)))
      ]
      yield* settle
      const [ra, rb] = [Number(t.log[0]!.split("@")[1]), Number(t.log[1]!.split("@")[1])]
      for (const [what, value] of refusals) {
        // ra refuses, rb takes more (though more loaded): the caller goes to rb
        load.of.set(ra, value)
        load.of.set(rb, 100)
        const elsewhere = yield* Effect.fork(Pool.useShared(pool, (r) => Effect.succeed(r.id)))
        assert.strictEqual(yield* Fiber.join(elsewhere), rb, what)
        // both refuse: the caller waits
        load.of.set(rb, value)
        const waiter = yield* Effect.fork(Pool.useShared(pool, t.hold(`w(${what})`, rest!)))
        yield* settle
        assert.strictEqual(t.log.length, 2, what)
        assert.strictEqual((yield* Pool.stats(pool)).waiting, 1, what)
        yield* Fiber.interrupt(waiter)
      }
      // a throwing load broke nothing: once they take more, callers join again
      load.of.set(ra, 1)
      load.of.set(rb, 2)
      assert.strictEqual(yield* Pool.useShared(pool, (r) => Effect.succeed(r.id)), ra)
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.sharedLeases, refusals.length + 1)
      assert.strictEqual(stats.waiting, 0)
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      yield* Fiber.joinAll(holders)
      assert.deepStrictEqual(
        yield* Effect.map(Pool.stats(pool), (s) => ({ inUse: s.inUse, idle: s.idle, size: s.size })),
        { inUse: 0, idle: 2, size: 2 }
      )
      assert.deepStrictEqual(t.violations, [])
    }).pipe(Effect.scoped))

  it.effect("4. a load that throws on every call never breaks the pool: callers wait, then get the resource", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        share: {
          load: () => {
            throw new Error("load exploded")
          }
        }
      })
      const t = makeTracker(8)
      const [a, b] = yield* releases(2)
      const first = yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))
      yield* settle
      const second = yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!)))
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1"])
      yield* Deferred.succeed(a!, void 0)
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1", "b@1"])
      yield* Deferred.succeed(b!, void 0)
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], [1, 1])
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle, shared: stats.sharedLeases }, {
        inUse: 0,
        idle: 1,
        shared: 0
      })
      assert.deepStrictEqual(t.violations, [])
    }).pipe(Effect.scoped))

  for (const via of ["use", "get"] as const) {
    it.effect(`5. FIFO: an exclusive waiter (${via}) stops new joins, gets the drained resource whole; shared waiters behind join the next shared hand-off`, () =>
      Effect.gen(function*() {
        const resources = makeTestResource()
        const load = makeLoad()
        const pool = yield* Pool.make({
          acquire: resources.acquire,
          closeTimeout: 0,
          max: 1,
          share: { load: load.load, maxHolders: 3 }
        })
        const t = makeTracker(3)
        const rel = yield* releases(7)
        const fork = (name: string, i: number, how: "shared" | "exclusive" = "shared") =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(
              how === "shared"
                ? Pool.useShared(pool, t.hold(name, rel[i]!))
                : via === "use"
                ? Pool.use(pool, t.hold(name, rel[i]!, how))
                : Effect.scoped(Effect.flatMap(Pool.get(pool), t.hold(name, rel[i]!, how)))
            )
            yield* settle
            return fiber
          })
        const fibers = [yield* fork("a", 0), yield* fork("b", 1)]
        assert.deepStrictEqual(t.log, ["a@1", "b@1"])
        fibers.push(yield* fork("x", 2, "exclusive")) // waits: the resource is shared
        fibers.push(yield* fork("c", 3)) // waits behind x, though the resource has room
        fibers.push(yield* fork("d", 4), yield* fork("e", 5), yield* fork("f", 6))
        assert.deepStrictEqual(t.log, ["a@1", "b@1"])
        assert.strictEqual((yield* Pool.stats(pool)).waiting, 5)
        yield* Deferred.succeed(rel[0]!, void 0) // a leaves: room, but x is at the head
        yield* settle
        assert.deepStrictEqual(t.log, ["a@1", "b@1"])
        yield* Deferred.succeed(rel[1]!, void 0) // b, the last sharer, leaves: x gets it whole
        yield* settle
        assert.deepStrictEqual(t.log, ["a@1", "b@1", "x@1"])
        yield* Deferred.succeed(rel[2]!, void 0) // x returns it: c gets it shared, d and e join, f waits
        yield* settle
        assert.deepStrictEqual(t.log, ["a@1", "b@1", "x@1", "c@1", "d@1", "e@1"])
        assert.strictEqual(t.holders(1), 3)
        let stats = yield* Pool.stats(pool)
        assert.strictEqual(stats.waiting, 1)
        assert.strictEqual(stats.sharedLeases, 3) // b, d, e
        for (const r of rel) yield* Deferred.succeed(r, void 0)
        yield* Fiber.joinAll(fibers)
        assert.deepStrictEqual(t.log, ["a@1", "b@1", "x@1", "c@1", "d@1", "e@1", "f@1"])
        stats = yield* Pool.stats(pool)
        assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle, size: stats.size }, {
          inUse: 0,
          idle: 1,
          size: 1
        })
        assert.deepStrictEqual(t.violations, [])
      }).pipe(Effect.scoped))
  }

  it.effect("5. a useShared caller whose checkout check failed waits as a sharer: callers behind it join its resource", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        min: 1,
        max: 1,
        checkAfterIdle: 0,
        check: (r) => r.id === 1 ? Effect.fail("broken") : Effect.void,
        retrySchedule: Schedule.spaced("100 millis"),
        share: { load: load.load }
      })
      yield* Pool.waitReady(pool, "1 second")
      yield* TestClock.adjust("1 millis") // #1 idle longer than checkAfterIdle: checked on checkout
      const t = makeTracker(8)
      const [a, b] = yield* releases(2)
      resources.failing = true // #1 fails its check; #2 cannot be created yet
      const first = yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))
      yield* settle
      const second = yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!)))
      yield* settle
      assert.strictEqual((yield* Pool.stats(pool)).waiting, 2)
      resources.failing = false
      yield* TestClock.adjust("100 millis")
      yield* settle
      // #2 goes to the first caller as a shared lease, and the second joins it
      assert.deepStrictEqual(t.log, ["a@2", "b@2"])
      assert.strictEqual((yield* Pool.stats(pool)).sharedLeases, 1)
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], [2, 2])
      assert.deepStrictEqual(t.violations, [])
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect("5. a caller for whom a resource is being created waits for it rather than join one", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      let slow = true
      // The first creation takes 40 ms (and fails), the next one ends at once, inside the request that started it.
      const acquire = Effect.suspend(() => {
        if (!slow) return resources.acquire
        slow = false
        return Effect.zipRight(Effect.sleep("40 millis"), Effect.fail(new CreateError({ attempt: 1 })))
      })
      const pool = yield* Pool.make({ acquire, closeTimeout: 0, max: 2, share: { load: load.load } })
      const t = makeTracker(8)
      const [a, b] = yield* releases(2)
      const first = yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))
      yield* settle
      assert.strictEqual((yield* Pool.stats(pool)).waiting, 1)
      // b's request starts the second creation: #1 goes to a (first in the queue); b does not
      // join it, since a resource is still being created (the slow one), which b waits for
      const second = yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!)))
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1"])
      assert.strictEqual((yield* Pool.stats(pool)).sharedLeases, 0)
      // the slow creation fails; its retry makes #2, for b
      yield* TestClock.adjust("2 seconds")
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1", "b@2"])
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], [1, 2])
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None)))

  it.effect("6. reset runs once, when the last sharer ends", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const resets: Array<number> = []
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        share: { load: load.load },
        reset: (r) => Effect.sync(() => resets.push(r.id))
      })
      const t = makeTracker(8)
      const rel = yield* releases(3)
      const fibers = []
      for (const i of [0, 1, 2]) {
        fibers.push(yield* Effect.fork(Pool.useShared(pool, t.hold(`s${i}`, rel[i]!))))
        yield* settle
      }
      assert.strictEqual(t.holders(1), 3)
      yield* Deferred.succeed(rel[0]!, void 0)
      yield* Deferred.succeed(rel[2]!, void 0)
      yield* settle
      assert.deepStrictEqual(resets, [])
      assert.strictEqual((yield* Pool.stats(pool)).inUse, 1)
      yield* Deferred.succeed(rel[1]!, void 0)
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(resets, [1])
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle }, { inUse: 0, idle: 1 })
    }).pipe(Effect.scoped))

  it.effect("6. invalidate by one sharer retires the resource after the last ends; the others keep running", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({ acquire: resources.acquire, closeTimeout: 0, max: 1, share: { load: load.load } })
      const t = makeTracker(8)
      const [a, b, c, d] = yield* releases(4)
      const first = yield* Effect.fork(
        Pool.useShared(pool, (r) => Effect.as(Effect.zipRight(Deferred.await(a!), Pool.invalidate(pool, r)), "a done"))
      )
      yield* settle
      const others = [yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!)))]
      yield* settle
      others.push(yield* Effect.fork(Pool.useShared(pool, t.hold("c", c!))))
      yield* settle
      yield* Deferred.succeed(a!, void 0)
      assert.strictEqual(yield* Fiber.join(first), "a done")
      yield* settle
      // a invalidated it and left: b and c still run on it, still alive
      assert.deepStrictEqual(t.log, ["b@1", "c@1"])
      assert.strictEqual(t.holders(1), 2)
      assert.isTrue(resources.alive.has(1))
      assert.strictEqual((yield* Pool.stats(pool)).retired.invalidated, 0)
      // an invalidated resource takes no more joins: d waits
      const later = yield* Effect.fork(Pool.useShared(pool, t.hold("d", d!)))
      yield* settle
      assert.strictEqual(t.log.length, 2)
      yield* Deferred.succeed(b!, void 0)
      yield* settle
      assert.isTrue(resources.alive.has(1))
      yield* Deferred.succeed(c!, void 0)
      yield* settle
      assert.isFalse(resources.alive.has(1))
      assert.strictEqual(resources.releases.get(1), 1)
      assert.deepStrictEqual(t.log, ["b@1", "c@1", "d@2"])
      yield* Deferred.succeed(d!, void 0)
      yield* Fiber.joinAll([...others, later])
      assert.strictEqual((yield* Pool.stats(pool)).retired.invalidated, 1)
      assert.deepStrictEqual(t.violations, [])
    }).pipe(Effect.scoped))

  it.effect("7. each shared lease counts as a use: no join beyond maxUses; the resource is retired after the last", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        maxUses: 3,
        share: { load: load.load }
      })
      const t = makeTracker(8)
      const rel = yield* releases(4)
      const fibers = []
      for (const i of [0, 1, 2, 3]) {
        fibers.push(yield* Effect.fork(Pool.useShared(pool, t.hold(`s${i}`, rel[i]!))))
        yield* settle
      }
      // three uses on #1; the fourth waits for a new resource
      assert.deepStrictEqual(t.log, ["s0@1", "s1@1", "s2@1"])
      for (const i of [0, 1, 2]) yield* Deferred.succeed(rel[i]!, void 0)
      yield* settle
      assert.deepStrictEqual(t.log, ["s0@1", "s1@1", "s2@1", "s3@2"])
      assert.isFalse(resources.alive.has(1))
      assert.strictEqual((yield* Pool.stats(pool)).retired.expired, 1)
      yield* Deferred.succeed(rel[3]!, void 0)
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.scoped))

  it.effect("7. a resource past maxLifetime takes no more joins", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        maxLifetime: "10 seconds",
        lifetimeJitter: 0,
        share: { load: load.load }
      })
      const t = makeTracker(8)
      const [a, b, c] = yield* releases(3)
      const fibers = [yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))]
      yield* settle
      fibers.push(yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!))))
      yield* settle
      yield* TestClock.adjust("10 seconds")
      fibers.push(yield* Effect.fork(Pool.useShared(pool, t.hold("c", c!))))
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1", "b@1"])
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1", "b@1", "c@2"])
      yield* Deferred.succeed(c!, void 0)
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.scoped))

  it.effect("7. a resource found dead (isAlive) takes no more joins; it is retired after the last sharer", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        isAlive: (r) => !r.dead,
        share: { load: load.load }
      })
      const t = makeTracker(8)
      const [a, b, c] = yield* releases(3)
      const fibers = [yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))]
      yield* settle
      fibers.push(yield* Effect.fork(Pool.useShared(pool, t.hold("b", b!))))
      yield* settle
      resources.byId.get(1)!.dead = true
      fibers.push(yield* Effect.fork(Pool.useShared(pool, t.hold("c", c!))))
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1", "b@1"])
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      yield* settle
      assert.deepStrictEqual(t.log, ["a@1", "b@1", "c@2"])
      assert.strictEqual((yield* Pool.stats(pool)).retired.dead, 1)
      yield* Deferred.succeed(c!, void 0)
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.scoped))

  it.effect("7. each shared lease is measured on its own: usageTimeTotal and use_time", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const name = "shared-metered"
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        name,
        share: { load: load.load }
      })
      const rel = yield* releases(3)
      const fibers = []
      for (const i of [0, 1, 2]) {
        fibers.push(yield* Effect.fork(Pool.useShared(pool, (r) => Effect.as(Deferred.await(rel[i]!), r.id))))
        yield* settle
      }
      for (const i of [0, 1, 2]) {
        yield* TestClock.adjust("1 second")
        yield* Deferred.succeed(rel[i]!, void 0)
        yield* settle
      }
      yield* Fiber.joinAll(fibers)
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.usageTimeTotal, 1000 + 2000 + 3000)
      const uses = yield* Metric.value(PoolStats.metricsOf(name).useTime)
      assert.isTrue(MetricState.isHistogramState(uses))
      assert.strictEqual(uses.count, 3)
      assert.strictEqual(uses.min, 1)
      assert.strictEqual(uses.max, 3)
    }).pipe(Effect.scoped))

  it.effect("7. leak detection reports each long sharer on its own, with its fiber", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        leakThreshold: "2 seconds",
        share: { load: load.load }
      })
      const [a, b, c] = yield* releases(3)
      const first = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(a!)))
      yield* settle
      const second = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(b!)))
      yield* settle
      yield* TestClock.adjust("1 second")
      // a short third lease that ends before the threshold is never reported
      const third = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(c!)))
      yield* settle
      yield* Deferred.succeed(c!, void 0)
      yield* Fiber.join(third)
      yield* TestClock.adjust("60 seconds")
      const warnings = logs.lines.filter((l) => l.level === "WARN" && l.message.includes("leased for over"))
      assert.strictEqual(warnings.length, 2)
      assert.isTrue(warnings.some((w) => w.message.includes(`fiber #${first.id().id} `)))
      assert.isTrue(warnings.some((w) => w.message.includes(`fiber #${second.id().id} `)))
      assert.isFalse(warnings.some((w) => w.message.includes(`fiber #${third.id().id} `)))
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      yield* Fiber.joinAll([first, second])
    }).pipe(Effect.scoped, logs.provide)
  })

  it.effect("7. a sharer reported as a leak is not reported again while the resource's reset runs", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        leakThreshold: "2 seconds",
        reset: () => Effect.sleep("30 seconds"),
        share: { load: load.load }
      })
      const [a, b] = yield* releases(2)
      const first = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(a!)))
      yield* settle
      const second = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(b!)))
      yield* settle
      yield* TestClock.adjust("3 seconds")
      const leaks = () => logs.lines.filter((l) => l.level === "WARN" && l.message.includes("leased for over"))
      assert.strictEqual(leaks().length, 2)
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      yield* settle
      // the last sharer's reset runs for 30 s: its lease was reported already
      yield* TestClock.adjust("60 seconds")
      yield* Fiber.joinAll([first, second])
      assert.strictEqual(leaks().length, 2)
      assert.strictEqual((yield* Pool.stats(pool)).idle, 1)
    }).pipe(Effect.scoped, logs.provide)
  })

  it.effect("7. a PoolTimeout lists every sharer as a holder", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        acquireTimeout: "1 second",
        leakThreshold: "10 seconds",
        share: { load: load.load }
      })
      const [a, b] = yield* releases(2)
      const first = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(a!)).pipe(Effect.withSpan("one")))
      yield* settle
      yield* TestClock.adjust("200 millis")
      const second = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(b!)).pipe(Effect.withSpan("two")))
      yield* settle
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* settle
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.strictEqual(error._tag, "PoolTimeout")
      if (error._tag !== "PoolTimeout") return
      assert.strictEqual(error.holders.length, 2)
      assert.include(error.message, `fiber #${first.id().id} for 1200 ms at span one`)
      assert.include(error.message, `fiber #${second.id().id} for 1000 ms at span two`)
      yield* Deferred.succeed(a!, void 0)
      yield* Deferred.succeed(b!, void 0)
      yield* Fiber.joinAll([first, second])
    }).pipe(Effect.scoped))

  const misbehaviours: ReadonlyArray<[string, (r: Resource) => Effect.Effect<number, string>]> = [
    [
      "throws synchronously",
      () => {
        throw new Error("f threw")
      }
    ],
    ["dies", () => Effect.die(new Error("f died"))],
    ["fails", () => Effect.fail("f failed")],
    ["is interrupted", () => Effect.never]
  ]

  for (const [how, f] of misbehaviours) {
    it.effect(`8. f that ${how} inside a shared lease: only its caller sees it; the others finish, then the resource is returned`, () =>
      Effect.gen(function*() {
        const resources = makeTestResource()
        const load = makeLoad()
        const resets: Array<number> = []
        const pool = yield* Pool.make({
          acquire: resources.acquire,
          closeTimeout: 0,
          max: 1,
          share: { load: load.load },
          reset: (r) => Effect.sync(() => resets.push(r.id))
        })
        const t = makeTracker(8)
        const [a, c] = yield* releases(2)
        const before = yield* Effect.fork(Pool.useShared(pool, t.hold("a", a!)))
        yield* settle
        const bad = yield* Effect.fork(Pool.useShared(pool, f))
        yield* settle
        if (how === "is interrupted") yield* Fiber.interrupt(bad)
        const after = yield* Effect.fork(Pool.useShared(pool, t.hold("c", c!)))
        yield* settle
        const exit = yield* Fiber.await(bad)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          if (how === "fails") assert.deepStrictEqual(Cause.failures(exit.cause).pipe((c) => [...c]), ["f failed"])
          else if (how === "is interrupted") assert.isTrue(Cause.isInterruptedOnly(exit.cause))
          else assert.strictEqual(Cause.defects(exit.cause).pipe((d) => [...d]).length, 1)
        }
        // the others still hold it, unharmed; the resource stays leased
        assert.deepStrictEqual(t.log, ["a@1", "c@1"])
        assert.strictEqual(t.holders(1), 2)
        assert.isNull(before.unsafePoll())
        assert.strictEqual((yield* Pool.stats(pool)).inUse, 1)
        assert.deepStrictEqual(resets, [])
        yield* Deferred.succeed(a!, void 0)
        yield* Deferred.succeed(c!, void 0)
        assert.deepStrictEqual([yield* Fiber.join(before), yield* Fiber.join(after)], [1, 1])
        assert.deepStrictEqual(resets, [1])
        const stats = yield* Pool.stats(pool)
        assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle, released: resources.counts.released }, {
          inUse: 0,
          idle: 1,
          released: 0
        })
        assert.deepStrictEqual(t.violations, [])
      }).pipe(Effect.scoped))
  }

  it.effect("9. a waiter interrupted in the instant it is handed a shared lease gives it back", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({ acquire: resources.acquire, closeTimeout: 0, max: 1, share: { load: load.load } })
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Pool.use(pool, () => Deferred.await(release)))
      yield* settle
      const waiter = yield* Effect.fork(Pool.useShared(pool, () => Effect.never))
      yield* settle
      // hand the resource to the waiter (as a shared lease) and interrupt it in the same step
      yield* Deferred.succeed(release, void 0)
      yield* Fiber.join(holder)
      yield* Fiber.interrupt(waiter)
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle }, { inUse: 0, idle: 1 })
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
    }).pipe(Effect.scoped))

  it.effect("9. a waiter interrupted in the instant it joins a shared resource gives its share back", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        closeTimeout: 0,
        max: 1,
        share: { load: load.load, maxHolders: 2 }
      })
      const [a, b] = yield* releases(2)
      const first = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(a!)))
      yield* settle
      const second = yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(b!)))
      yield* settle
      const waiter = yield* Effect.fork(Pool.useShared(pool, () => Effect.never))
      yield* settle
      assert.strictEqual((yield* Pool.stats(pool)).waiting, 1)
      // the first sharer leaves: the waiter joins in its place, and is interrupted in the same step
      yield* Deferred.succeed(a!, void 0)
      yield* Fiber.join(first)
      yield* Fiber.interrupt(waiter)
      yield* Deferred.succeed(b!, void 0)
      yield* Fiber.join(second)
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle, waiting: stats.waiting }, {
        inUse: 0,
        idle: 1,
        waiting: 0
      })
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
    }).pipe(Effect.scoped))

  it.effect("10. close with sharers past closeTimeout: each fails with LeaseRevoked, the resource is released once", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(
        Pool.make({ acquire: resources.acquire, max: 1, closeTimeout: "500 millis", share: { load: load.load } }),
        scope
      )
      const rel = yield* releases(3)
      const sharers = []
      for (const r of rel) {
        sharers.push(yield* Effect.fork(Pool.useShared(pool, () => Deferred.await(r))))
        yield* settle
      }
      assert.strictEqual((yield* Pool.stats(pool)).sharedLeases, 2)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust("499 millis")
      assert.isNull(closing.unsafePoll())
      assert.isTrue(resources.alive.has(1))
      yield* TestClock.adjust("1 millis")
      yield* settle
      // close is done while the sharers still run: it waits for none of them
      assert.isNotNull(closing.unsafePoll())
      assert.strictEqual(resources.releases.get(1), 1)
      for (const r of rel) yield* Deferred.succeed(r, void 0)
      for (const sharer of sharers) {
        const error = yield* Effect.flip(Fiber.join(sharer))
        assert.isTrue(PoolError.isPoolError(error) && error._tag === "LeaseRevoked")
      }
      assert.strictEqual(resources.releases.get(1), 1)
      assert.strictEqual(resources.counts.released, 1)
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, size: stats.size, closed: stats.closed }, {
        inUse: 0,
        size: 0,
        closed: true
      })
      // the warning counts the leases, not the resource they shared
      const warnings = logs.noisy().map((l) => l.message)
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "closed with 3 lease(s) still held after closeTimeout (500 ms)")
    }).pipe(logs.provide)
  })

  it.effect("10. sharers revoked by close are each measured, from their own start", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const name = "shared-revoked"
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(
        Pool.make({ acquire: resources.acquire, max: 1, name, closeTimeout: "500 millis", share: { load: load.load } }),
        scope
      )
      const first = yield* Effect.fork(Pool.useShared(pool, () => Effect.never))
      yield* settle
      yield* TestClock.adjust("1 second")
      const second = yield* Effect.fork(Pool.useShared(pool, () => Effect.never))
      yield* settle
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust("500 millis")
      yield* Fiber.join(closing)
      // the first held it 1.5 s, the second 0.5 s
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.usageTimeTotal, 2000)
      const uses = yield* Metric.value(PoolStats.metricsOf(name).useTime)
      assert.strictEqual(uses.count, 2)
      assert.strictEqual(uses.max, 1.5)
      assert.strictEqual(uses.min, 0.5)
      yield* Fiber.interruptAll([first, second])
    }))

  it.effect("10. sharers that end within closeTimeout return the resource; close releases it once", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const load = makeLoad()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(
        Pool.make({ acquire: resources.acquire, max: 1, closeTimeout: "500 millis", share: { load: load.load } }),
        scope
      )
      const rel = yield* releases(2)
      const sharers = []
      for (const r of rel) {
        sharers.push(yield* Effect.fork(Pool.useShared(pool, (x) => Effect.as(Deferred.await(r), x.id))))
        yield* settle
      }
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* settle
      yield* Deferred.succeed(rel[0]!, void 0)
      yield* settle
      assert.isNull(closing.unsafePoll())
      assert.isTrue(resources.alive.has(1))
      yield* Deferred.succeed(rel[1]!, void 0)
      yield* settle
      assert.isNotNull(closing.unsafePoll())
      assert.deepStrictEqual([yield* Fiber.join(sharers[0]!), yield* Fiber.join(sharers[1]!)], [1, 1])
      assert.strictEqual(resources.releases.get(1), 1)
    }))
})
