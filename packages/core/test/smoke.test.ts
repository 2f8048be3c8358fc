import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as Pool from "../src/Pool.js"
import { makeTestResource } from "./utils/TestResource.js"

describe("smoke", () => {
  it.effect("use and get", () =>
    Effect.gen(function*() {
      const res = makeTestResource()
      yield* Effect.scoped(Effect.gen(function*() {
        const pool = yield* Pool.make({ acquire: res.acquire, min: 2, max: 3 })
        const id = yield* Pool.use(pool, (r) => Effect.succeed(r.id))
        assert.isAbove(id, 0)
        const a = yield* Effect.scoped(pool.get)
        assert.isAbove(a.id, 0)
        const stats = yield* Pool.stats(pool)
        assert.strictEqual(stats.size, 2)
        const f = yield* Effect.fork(Effect.scoped(Effect.all([pool.get, pool.get, pool.get, pool.get])))
        yield* TestClock.adjust("31 seconds")
        const exit = yield* Fiber.await(f)
        assert.strictEqual(exit._tag, "Failure")
      }))
      assert.strictEqual(res.alive.size, 0)
    }))
})
