import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { captureLogs } from "../../../test/support/logs.js"
import * as Pool from "../src/Pool.js"
import { makeTestResource } from "./utils/TestResource.js"

const warnings = (logs: ReturnType<typeof captureLogs>) => logs.lines.filter((l) => l.level === "WARN")

describe("Pool misuse diagnostics", () => {
  it.effect("churn: the same configuration opened and closed more than 3 times a minute logs one Warning", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const open = Effect.scoped(
        Pool.make({ acquire: makeTestResource().acquire, name: "per-request", identity: "churn-1" })
      )
      for (let i = 0; i < 3; i++) yield* open
      assert.strictEqual(warnings(logs).length, 0)
      for (let i = 0; i < 5; i++) yield* open
      const churn = warnings(logs)
      assert.strictEqual(churn.length, 1)
      assert.include(churn[0]!.message, "pool \"per-request\" was opened and closed 4 times within a minute")
      assert.include(churn[0]!.message, "Layer memoization")
      assert.include(churn[0]!.message, "ManagedRuntime")
    }).pipe(logs.provide)
  })

  it.effect("churn: opening and closing slowly is not churn", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      for (let i = 0; i < 6; i++) {
        yield* Effect.scoped(Pool.make({ acquire: makeTestResource().acquire, identity: "slow-2" }))
        yield* TestClock.adjust("30 seconds")
      }
      assert.strictEqual(warnings(logs).length, 0)
    }).pipe(logs.provide)
  })

  it.effect("duplicates: two live pools with identical configuration log one Warning", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      yield* Pool.make({ acquire: makeTestResource().acquire, name: "twin", identity: "dup-3" })
      assert.strictEqual(warnings(logs).length, 0)
      yield* Pool.make({ acquire: makeTestResource().acquire, name: "twin", identity: "dup-3" })
      yield* Pool.make({ acquire: makeTestResource().acquire, name: "twin", identity: "dup-3" })
      const dup = warnings(logs)
      assert.strictEqual(dup.length, 1)
      assert.include(dup[0]!.message, "2 pools with identical configuration are open in this process")
    }).pipe(Effect.scoped, logs.provide)
  })
})
