import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { canMove, type EntryState, isLeased } from "../src/internal/pool/entry.js"
import * as Pool from "../src/Pool.js"
import { makeTestResource } from "./utils/TestResource.js"

const states: ReadonlyArray<EntryState> = ["idle", "leased", "invalidated", "revoked", "retired"]

describe("Pool entries", () => {
  it("D21 an entry has one state and moves only along its transitions", () => {
    const allowed = states.flatMap((from) => states.filter((to) => canMove(from, to)).map((to) => `${from}->${to}`))
    assert.deepStrictEqual(allowed, [
      "idle->leased",
      "idle->retired",
      "leased->idle",
      "leased->invalidated",
      "leased->revoked",
      "leased->retired",
      "invalidated->revoked",
      "invalidated->retired"
    ])
    assert.deepStrictEqual(states.filter(isLeased), ["leased", "invalidated"])
  })

  it.effect("D21 the one transition function refuses a move the table does not allow", () =>
    Effect.gen(function*() {
      const pool = yield* Pool.make({ acquire: makeTestResource().acquire, max: 1 })
      yield* Pool.use(pool, () => Effect.void)
      const state = (pool as unknown as { state: { idle: Array<any>; transition: (e: any, s: EntryState) => void } })
        .state
      const entry = state.idle[0]
      assert.strictEqual(entry.state, "idle")
      assert.throws(() => state.transition(entry, "revoked"), /cannot move from idle to revoked/)
      assert.strictEqual(entry.state, "idle")
    }).pipe(Effect.scoped))
})
