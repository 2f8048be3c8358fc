import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as PoolOptions from "../src/PoolOptions.js"

describe("PoolOptions.decodeMillis", () => {
  it("D21 one duration validator: the milliseconds, or what was expected with the accepted format", () => {
    const accepted: ReadonlyArray<readonly [unknown, number, boolean]> = [
      ["5 seconds", 5_000, false],
      ["500 millis", 500, false],
      [250, 250, false],
      [Duration.minutes(2), 120_000, false],
      [[1, 500_000_000], 1_500, false],
      [BigInt(2_000_000), 2, false],
      [0, 0, true],
      ["0 millis", 0, true]
    ]
    for (const [input, millis, allowZero] of accepted) {
      assert.deepStrictEqual(PoolOptions.decodeMillis(input, { allowZero }), Either.right(millis), String(input))
    }
    const rejected: ReadonlyArray<readonly [unknown, boolean]> = [
      [0, false],
      [-1, false],
      [-1, true],
      [Number.NaN, true],
      [Number.POSITIVE_INFINITY, false],
      ["-5 seconds", true],
      ["NaN millis", false],
      ["forever", false],
      ["5", false],
      [{}, false],
      [undefined, false],
      [[-1, 0], true],
      [BigInt(-1), true]
    ]
    for (const [input, allowZero] of rejected) {
      const decoded = PoolOptions.decodeMillis(input, { allowZero })
      assert.isTrue(Either.isLeft(decoded), String(input))
      const expected = Either.isLeft(decoded) ? decoded.left : ""
      assert.isTrue(expected.startsWith(allowZero ? "a finite duration >= 0" : "a finite duration > 0"), expected)
      assert.include(expected, "such as \"5 seconds\" or \"500 millis\"")
    }
  })
})
