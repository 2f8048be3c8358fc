import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { captureLogs } from "../../../test/support/logs.js"
import * as Pool from "../src/Pool.js"
import { makeTestResource } from "./utils/TestResource.js"

describe("Pool leak detection", () => {
  it.effect("8. a lease held past leakThreshold logs one Warning with its acquisition site and fiber id", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({ acquire: resources.acquire, max: 2, leakThreshold: "2 seconds", name: "leaky" })
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        Pool.use(pool, () => Deferred.await(release)).pipe(Effect.withSpan("monthly-report"))
      )
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      assert.strictEqual(logs.lines.filter((l) => l.level === "WARN").length, 0)
      yield* TestClock.adjust("10 seconds")
      const warnings = logs.lines.filter((l) => l.level === "WARN")
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0]!.message, "span monthly-report")
      assert.include(warnings[0]!.message, `fiber #${holder.id().id}`)
      assert.strictEqual(warnings[0]!.annotations.pool, "leaky")
      yield* Deferred.succeed(release, void 0)
      yield* Fiber.join(holder)
    }).pipe(Effect.scoped, logs.provide)
  })

  it.effect("8. PoolTimeout's message names the current holders and where they took their leases", () =>
    Effect.gen(function*() {
      const resources = makeTestResource()
      const pool = yield* Pool.make({
        acquire: resources.acquire,
        max: 1,
        leakThreshold: "10 seconds",
        acquireTimeout: "1 second"
      })
      const holder = yield* Effect.fork(Pool.use(pool, () => Effect.never).pipe(Effect.withSpan("slow-export")))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Pool.use(pool, () => Effect.void))
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.strictEqual(error._tag, "PoolTimeout")
      assert.include(error.message, "held by:")
      assert.include(error.message, `fiber #${holder.id().id} for 1000 ms at span slow-export`)
      yield* Fiber.interrupt(holder)
    }).pipe(Effect.scoped))
})
