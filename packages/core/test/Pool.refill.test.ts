import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import { captureLogs } from "../../../test/support/logs.js"
import * as Pool from "../src/Pool.js"
import * as PoolOptions from "../src/PoolOptions.js"
import { makeTestResource } from "./utils/TestResource.js"

describe("Pool refill", () => {
  it.effect("6. creation failures are retried in the background with backoff while the waiter keeps waiting", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const attemptsAt: Array<number> = []
      const acquire = Effect.zipRight(
        Effect.flatMap(TestClock.currentTimeMillis, (t) => Effect.sync(() => attemptsAt.push(t))),
        resources.acquire
      )
      const pool = yield* Pool.make({
        name: "refill",
        acquire,
        max: 3,
        acquireTimeout: "10 seconds",
        retrySchedule: Schedule.exponential("100 millis", 2)
      })
      const waiter = yield* Effect.fork(Pool.use(pool, (r) => Effect.succeed(r.id)))
      yield* TestClock.adjust("300 millis")
      // one fiber retries (not one per waiter), at 0, +100, +200 ms
      assert.deepStrictEqual(attemptsAt, [0, 100, 300])
      assert.isNull(yield* Fiber.poll(waiter).pipe(Effect.map((o) => o._tag === "Some" ? o.value : null)))
      resources.failing = false
      yield* TestClock.adjust("400 millis")
      assert.strictEqual(yield* Fiber.join(waiter), 1)
      assert.deepStrictEqual(attemptsAt, [0, 100, 300, 700])
      const stats = yield* Pool.stats(pool)
      assert.strictEqual(stats.creationErrors, 3)
      assert.strictEqual(stats.created, 1)
      const warning = logs.lines.find((l) => l.level === "WARN" && l.message.includes("creating a resource failed"))
      assert.strictEqual(warning?.annotations.pool, "refill")
    }).pipe(Effect.scoped, logs.provide)
  })

  it.effect("6. after reconnectTimeout of continuous failure onReconnectFailed runs and waiters fail with the creation error", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const reported: Array<unknown> = []
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        max: 2,
        acquireTimeout: "1 minute",
        reconnectTimeout: "5 seconds",
        retrySchedule: Schedule.spaced("1 second"),
        onReconnectFailed: (error) => Effect.sync(() => reported.push(error))
      })
      const waiters = yield* Effect.forEach([1, 2], () => Effect.fork(Pool.use(pool, () => Effect.void)))
      yield* TestClock.adjust("4 seconds")
      assert.isNull(yield* Fiber.poll(waiters[0]!).pipe(Effect.map((o) => o._tag === "Some" ? o.value : null)))
      yield* TestClock.adjust("1 second")
      for (const waiter of waiters) {
        const error = yield* Effect.flip(Fiber.join(waiter))
        assert.strictEqual(error._tag, "CreateError")
      }
      assert.strictEqual(reported.length, 1)
      assert.strictEqual((reported[0] as any)._tag, "CreateError")
    }).pipe(Effect.scoped))

  it.effect("6. failFast errors fail the waiters at once; creation keeps retrying and the pool recovers", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        max: 1,
        acquireTimeout: "1 minute",
        retrySchedule: Schedule.spaced("1 second"),
        failFast: (error) => error._tag === "CreateError"
      })
      const error = yield* Effect.flip(Pool.use(pool, () => Effect.void))
      assert.strictEqual(error._tag, "CreateError")
      resources.failing = false
      assert.strictEqual(yield* Pool.use(pool, (r) => Effect.succeed(r.id)), 1)
    }).pipe(Effect.scoped))

  it.effect("6. the default retry schedule is exponential, jittered and capped at 1 s", () =>
    Effect.gen(function*() {
      const delays = yield* Schedule.run(
        Schedule.delays(PoolOptions.defaultRetrySchedule),
        0,
        Array.from({ length: 12 }, (_, i) => i)
      )
      const millis = [...delays].map(Duration.toMillis)
      assert.isTrue(millis[0]! >= 80 && millis[0]! <= 120, `first delay ${millis[0]}`)
      assert.isTrue(millis.every((ms) => ms <= 1_000))
      assert.strictEqual(millis.at(-1), 1_000)
    }))

  it.effect("6. logs a user reads: one Warning per outage, Debug per further failure, no stack; one Info when it recovers", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const pool = yield* Pool.make({
        name: "outage",
        acquire: resources.acquire,
        max: 1,
        acquireTimeout: "10 seconds",
        retrySchedule: Schedule.spaced("100 millis")
      })
      const waiter = yield* Effect.fork(Pool.use(pool, (r) => Effect.succeed(r.id)))
      yield* TestClock.adjust("250 millis")
      resources.failing = false
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(waiter), 1)
      const lines = logs.lines.filter((l) => l.annotations.pool === "outage" && l.message.includes("creat"))
      const at = (level: string) => lines.filter((l) => l.level === level)
      assert.strictEqual(at("WARN").length, 1)
      assert.include(at("WARN")[0]!.message, "creating a resource failed: CreateError; retrying with backoff")
      assert.deepStrictEqual(
        at("DEBUG").filter((l) => l.message.includes("failed again")).map((l) => l.annotations.attempts),
        [2, 3]
      )
      assert.strictEqual(at("INFO").length, 1)
      assert.include(at("INFO")[0]!.message, "creating resources works again after 3 failed attempt(s) over 300 ms")
      // an expected, typed failure: its message, never a stack
      for (const line of lines) assert.notInclude(line.message, "    at ")
      assert.deepStrictEqual(at("ERROR"), [])
    }).pipe(Effect.scoped, logs.provide)
  })

  it.effect("6. a failure handed to the waiting callers at once (failFast) is theirs to report: the pool logs no Warning for it", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      resources.failing = true
      const pool = yield* Pool.make({
        name: "fail-fast-logs",
        acquire: resources.acquire,
        max: 1,
        failFast: () => true,
        retrySchedule: Schedule.spaced("100 millis")
      })
      // the caller gets the error at once; the pool only notes it at Debug
      const error = yield* Effect.flip(Pool.use(pool, (r) => Effect.succeed(r.id)))
      assert.strictEqual(error._tag, "CreateError")
      const lines = () =>
        logs.lines.filter((l) => l.annotations.pool === "fail-fast-logs" && l.message.includes("creat"))
      assert.deepStrictEqual(lines().filter((l) => l.level !== "DEBUG"), [])
      // retried for min with nobody waiting: now the outage is the pool's to report, once
      yield* Pool.resize(pool, { min: 1, max: 1 })
      yield* TestClock.adjust("350 millis")
      const warnings = lines().filter((l) => l.level === "WARN")
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0]!.message, "attempts): CreateError; retrying with backoff")
      resources.failing = false
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(lines().filter((l) => l.level === "INFO").length, 1)
    }).pipe(Effect.scoped, logs.provide)
  })
})
