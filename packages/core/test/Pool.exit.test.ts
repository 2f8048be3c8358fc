/**
 * What a pool does when the process runs out of work, in a child Node process: a pool a
 * program forgot to close is closed by the beforeExit hook, but a waiter blocked inside an
 * open scope is a deadlock, not a forgotten pool — its deadline keeps the process alive, and
 * it gets its `PoolTimeout` naming the holders.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnFile } from "../../../test/support/child.js"

describe("Pool at process exit", () => {
  it.live(
    "D16 a waiter deadlocked inside an open scope gets its PoolTimeout naming the holders, not PoolClosed",
    () =>
      Effect.gen(function*() {
        const child = yield* spawnFile("packages/core/test/fixtures/child-deadlock.ts", {})
        const exit = yield* Effect.promise(() => child.exited)
        const output = child.output()
        assert.strictEqual(exit.code, 0, output)
        const ended = /ENDED after=(\d+) tag=(\w+)/.exec(output)
        assert.isNotNull(ended, output)
        assert.strictEqual(ended![2], "PoolTimeout", output)
        assert.isAtLeast(Number(ended![1]), 450, output)
        assert.include(output, "pool \"deadlock\": no resource after", output)
        assert.include(output, "held by:", output)
        assert.notInclude(output, "was not closed", output)
      }).pipe(Effect.scoped),
    { timeout: 20_000 }
  )
})
