/**
 * Hostile user code (S13): `Pool.use`'s `f`, the hooks and `acquire` that throw, die, fail
 * synchronously or hang. Whatever they do, no lease is lost, no resource leaks, the event loop
 * stays free and every waiter gets the cause within its `acquireTimeout`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import { captureLogs } from "../../../test/support/logs.js"
import * as Pool from "../src/Pool.js"
import { CreateError, makeTestResource } from "./utils/TestResource.js"

const boom = (what: string) => new Error(`${what} is broken`)

/** The defect `exit` died with; fails the test if it did not die. */
const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const defect = Cause.dieOption((exit as Exit.Failure<unknown, unknown>).cause)
  assert.isTrue(Option.isSome(defect), `expected a defect, got ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`)
  return (defect as Option.Some<unknown>).value
}

const pollNow = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.getOrUndefined)

describe("D12 hostile hooks and f: the lease is returned or the resource retired (reason logged), never lost", () => {
  it.effect("D12 Pool.use whose f throws when called: the caller dies with it and the lease is returned", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 1, closeTimeout: 0 })
      const exit = yield* Effect.exit(Pool.use(pool, (): Effect.Effect<void> => {
        throw boom("f")
      }))
      assert.strictEqual((defectOf(exit) as Error).message, "f is broken")
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, idle: stats.idle }, { inUse: 0, idle: 1 })
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
    }).pipe(Effect.scoped))

  for (const how of ["throws", "dies"] as const) {
    it.effect(`D12 a check that ${how} retires the resource, logs why, and the caller gets the next one`, () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const resources = makeTestResource()
        let broken = false
        const pool = yield* Pool.make({
          name: "checked",
          acquire: resources.acquire,
          max: 2,
          checkAfterIdle: 0,
          closeTimeout: 0,
          check: (r) => {
            if (!broken || r.id !== 1) return Effect.void
            if (how === "throws") throw boom("check")
            return Effect.die(boom("check"))
          }
        })
        assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
        yield* TestClock.adjust("10 millis")
        broken = true
        assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 2)
        yield* Effect.yieldNow()
        const stats = yield* Pool.stats(pool)
        assert.deepStrictEqual({ inUse: stats.inUse, size: stats.size }, { inUse: 0, size: 1 })
        assert.strictEqual(stats.retired["check-failed"], 1)
        assert.isFalse(resources.alive.has(1))
        const retired = logs.lines.find((l) => l.message.includes("retired resource #1"))
        assert.strictEqual(retired?.annotations.reason, "check-failed")
        assert.include(retired?.message, "check is broken")
      }).pipe(Effect.scoped, logs.provide)
    })

    it.effect(`D12 a reset that ${how} retires the resource, logs why, and the caller keeps its result`, () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const resources = makeTestResource()
        const pool = yield* Pool.make({
          acquire: resources.acquire,
          max: 1,
          closeTimeout: 0,
          reset: (r) => {
            if (r.id !== 1) return undefined
            if (how === "throws") throw boom("reset")
            return Effect.die(boom("reset"))
          }
        })
        assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
        assert.strictEqual(yield* Effect.scoped(Effect.map(Pool.get(pool), (r) => r.id)), 2)
        yield* Effect.yieldNow()
        const stats = yield* Pool.stats(pool)
        assert.deepStrictEqual({ inUse: stats.inUse, size: stats.size }, { inUse: 0, size: 1 })
        assert.strictEqual(stats.retired["reset-failed"], 1)
        assert.isFalse(resources.alive.has(1))
        const retired = logs.lines.find((l) => l.message.includes("retired resource #1"))
        assert.strictEqual(retired?.annotations.reason, "reset-failed")
        assert.include(retired?.message, "reset is broken")
      }).pipe(Effect.scoped, logs.provide)
    })
  }

  it.effect("D12 an isAlive that throws counts as dead: the resource is retired on return and on checkout", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      let throwing = false
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        max: 2,
        closeTimeout: 0,
        isAlive: (r) => {
          if (throwing && r.id <= 2) throw boom("isAlive")
          return true
        }
      })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Pool.get(pool) // #1, returned below while isAlive throws
        yield* Effect.scoped(Pool.get(pool)) // #2, idle when isAlive starts to throw
        throwing = true
      }))
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 3)
      yield* Effect.yieldNow()
      const stats = yield* Pool.stats(pool)
      assert.deepStrictEqual({ inUse: stats.inUse, size: stats.size, dead: stats.retired.dead }, {
        inUse: 0,
        size: 1,
        dead: 2
      })
      assert.deepStrictEqual([...resources.alive], [3])
      const retired = logs.lines.filter((l) =>
        l.message.includes("retired resource") && l.annotations.reason === "dead"
      )
      assert.strictEqual(retired.length, 2)
      assert.include(retired[0]!.message, "isAlive is broken")
    }).pipe(Effect.scoped, logs.provide)
  })

  for (const how of ["throws", "dies"] as const) {
    it.effect(`D12 an onCreate that ${how}: the resource is released, the waiter gets the defect at once, the next creation works`, () =>
      Effect.gen(function*() {
        const resources = makeTestResource()
        const pool = yield* Pool.make({
          acquire: resources.acquire,
          max: 1,
          acquireTimeout: "10 seconds",
          closeTimeout: 0,
          onCreate: (r): Effect.Effect<void> => {
            if (r.id !== 1) return Effect.void
            if (how === "throws") throw boom("onCreate")
            return Effect.die(boom("onCreate"))
          }
        })
        const waiter = yield* Effect.fork(Effect.exit(Pool.use(pool, (r) => Effect.succeed(r.id))))
        yield* TestClock.adjust("10 millis")
        const exit = yield* pollNow(waiter)
        assert.isDefined(exit, "the waiter is still waiting")
        assert.strictEqual((defectOf(Exit.flatten(exit!)) as Error).message, "onCreate is broken")
        assert.isFalse(resources.alive.has(1))
        assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 2)
        assert.strictEqual((yield* Pool.stats(pool)).inUse, 0)
      }).pipe(Effect.scoped))
  }
})

describe("D13 an acquire that fails or dies synchronously, with any retry schedule", () => {
  it.effect("D13 with Schedule.forever: one attempt at a time after the first failures, spaced, and waiters get the cause", () =>
    Effect.gen(function*() {
      let attempts = 0
      const acquire = Effect.suspend(() => {
        attempts++
        return Effect.fail(new CreateError({ attempt: attempts }))
      })
      const pool = yield* Pool.make({
        acquire,
        max: 3,
        acquireTimeout: "1 second",
        closeTimeout: 0,
        retrySchedule: Schedule.forever
      })
      const waiters = yield* Effect.forEach([1, 2, 3], () => Effect.fork(Pool.use(pool, () => Effect.void)))
      yield* Effect.yieldNow()
      // three creations start at once; after they fail, a single fiber retries
      const burst = attempts
      assert.isAtMost(burst, 3)
      yield* TestClock.adjust("100 millis")
      // spaced by minRetryDelay (10 ms by default), whatever the schedule says
      assert.isAtMost(attempts - burst, 11, `attempts in 100 ms: ${attempts - burst}`)
      assert.isAtLeast(attempts - burst, 5, `attempts in 100 ms: ${attempts - burst}`)
      assert.strictEqual((yield* Pool.stats(pool)).pending, 1)
      yield* TestClock.adjust("900 millis")
      for (const waiter of waiters) {
        const error = yield* Effect.flip(Fiber.join(waiter))
        assert.strictEqual(error._tag, "PoolTimeout")
        assert.strictEqual((error as { cause?: { _tag?: string } }).cause?._tag, "CreateError")
      }
    }).pipe(Effect.scoped))

  const defects: ReadonlyArray<readonly [string, Effect.Effect<never>]> = [
    ["Effect.die", Effect.die(boom("acquire"))],
    [
      "a throw in Effect.suspend",
      Effect.suspend((): Effect.Effect<never> => {
        throw boom("acquire")
      })
    ],
    [
      "a throw in Effect.sync",
      Effect.sync((): never => {
        throw boom("acquire")
      })
    ]
  ]
  for (const [how, acquire] of defects) {
    it.effect(`D13 a defect in acquire (${how}) reaches the waiters as a defect in their cause`, () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const pool = yield* Pool.make({
          name: "buggy",
          acquire,
          max: 2,
          acquireTimeout: "10 seconds",
          closeTimeout: 0,
          retrySchedule: Schedule.forever
        })
        const waiters = yield* Effect.forEach([1, 2], () => Effect.fork(Effect.exit(Pool.use(pool, () => Effect.void))))
        yield* TestClock.adjust("10 millis")
        for (const waiter of waiters) {
          const exit = yield* pollNow(waiter)
          assert.isDefined(exit, "the waiter is still waiting")
          assert.strictEqual((defectOf(Exit.flatten(exit!)) as Error).message, "acquire is broken")
        }
        // logged as what it is, once, with the pool's name; not at DEBUG
        const reported = logs.lines.filter((l) => l.level === "ERROR" && l.message.includes("acquire is broken"))
        assert.strictEqual(reported.length, 1)
        assert.strictEqual(reported[0]!.annotations.pool, "buggy")
      }).pipe(Effect.scoped, logs.provide)
    })
  }

  it.effect("D13 a retry schedule that gives up at once: waiters fail with the error, and nothing spins until the next request", () =>
    Effect.gen(function*() {
      let attempts = 0
      const acquire = Effect.suspend(() => {
        attempts++
        return Effect.fail(new CreateError({ attempt: attempts }))
      })
      const pool = yield* Pool.make({
        acquire,
        min: 2,
        max: 2,
        acquireTimeout: "10 seconds",
        closeTimeout: 0,
        retrySchedule: Schedule.recurs(0)
      })
      assert.strictEqual(attempts, 1)
      const error = yield* Effect.flip(Pool.use(pool, () => Effect.void))
      assert.strictEqual(error._tag, "CreateError")
      assert.strictEqual(attempts, 2)
      // the maintenance pass tries again for min, once per pass
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(attempts, 3)
    }).pipe(Effect.scoped))

  it.live("D13 the event loop stays free: timers fire while acquire fails synchronously under Schedule.forever", () =>
    Effect.gen(function*() {
      let attempts = 0
      const acquire = Effect.suspend(() => {
        attempts++
        return Effect.fail(new CreateError({ attempt: attempts }))
      })
      const pool = yield* Pool.make({
        acquire,
        max: 2,
        acquireTimeout: "300 millis",
        closeTimeout: 0,
        retrySchedule: Schedule.forever
      })
      let ticks = 0
      const interval = setInterval(() => ticks++, 10)
      const started = Date.now()
      const error = yield* Effect.flip(Pool.use(pool, () => Effect.void)).pipe(
        Effect.ensuring(Effect.sync(() => clearInterval(interval)))
      )
      const elapsed = Date.now() - started
      assert.strictEqual(error._tag, "PoolTimeout")
      // 300 ms of a 10 ms interval: 30 ticks if the loop is free; generous for a loaded machine
      assert.isAtLeast(ticks, 10, `${ticks} ticks in ${elapsed} ms`)
      assert.isBelow(elapsed, 2_000)
      // one attempt per 10 ms at most (minRetryDelay), plus the first
      assert.isAtMost(attempts, Math.ceil(elapsed / 10) + 2, `${attempts} attempts in ${elapsed} ms`)
    }).pipe(Effect.scoped))
})
