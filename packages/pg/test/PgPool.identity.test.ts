/**
 * D11: the duplicate-pool warning ("2 pools with identical configuration are open") compares
 * the full connection identity — user, host, port and database, with the pool's name — so a
 * primary and a replica (or two databases) under one application name do not warn. The pools
 * are `lazy`: nothing connects, no server is needed.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { captureLogs } from "../../../test/support/logs.js"
import * as PgPool from "../src/PgPool.js"

const duplicateWarnings = (urls: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const logs = captureLogs()
    yield* Effect.forEach(urls, (url) => PgPool.make({ url, applicationName: "d11-app", lazy: true })).pipe(
      Effect.scoped,
      Effect.provide(Reactivity.layer),
      logs.provide
    )
    return logs.lines.filter((line) => line.level === "WARN" && line.message.includes("identical configuration"))
  })

describe("D11 duplicate pools", () => {
  it.live("D11 a primary and a replica on different databases do not warn; the same one twice warns once", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* duplicateWarnings(["postgres://app@127.0.0.1:5432/primary", "postgres://app@127.0.0.1:5432/replica"]),
        []
      )
      assert.deepStrictEqual(
        yield* duplicateWarnings(["postgres://app@10.0.0.1:5432/shop", "postgres://app@10.0.0.2:5432/shop"]),
        [],
        "two hosts"
      )
      assert.deepStrictEqual(
        yield* duplicateWarnings(["postgres://reader@127.0.0.1:5432/shop", "postgres://writer@127.0.0.1:5432/shop"]),
        [],
        "two users"
      )
      const twice = yield* duplicateWarnings([
        "postgres://app@127.0.0.1:5432/same",
        "postgres://app@127.0.0.1:5432/same"
      ])
      assert.strictEqual(twice.length, 1)
    }))
})
