import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { eventuallyActive, eventuallyNoBackends } from "../support/backends.js"
import { captureLogs } from "../support/logs.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

/**
 * Opens a pool of `size` in its own scope, puts every connection in `pg_sleep(60)` from fibers
 * forked either in that scope (`"children"`, the usual program shape) or as daemons outside it,
 * then closes the scope. Returns the close time and the holders' exits.
 */
const closeWhileBusy = (size: number, holders: "children" | "daemon") =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const pg = yield* Scope.extend(
      PgPool.make({ url: Redacted.make(url), applicationName, max: size, min: size }),
      scope
    ).pipe(Effect.provide(Reactivity.layer))
    const sleep = pg.sql`SELECT pg_sleep(60)`
    const fibers = yield* Effect.forEach(
      Array.from({ length: size }),
      () => holders === "daemon" ? Effect.forkDaemon(sleep) : Effect.forkIn(sleep, scope)
    )
    yield* eventuallyActive(url, applicationName, {
      count: size,
      queryLike: "SELECT pg_sleep(60)",
      within: "20 seconds"
    })
    const started = Date.now()
    yield* Scope.close(scope, Exit.void)
    const closeMillis = Date.now() - started
    yield* eventuallyNoBackends(url, applicationName, { within: "1 second" })
    const exits = yield* Effect.forEach(fibers, Fiber.await)
    return { closeMillis, exits }
  })

describe("S1 close while busy", () => {
  it.live("fibers of the closing scope: every statement cancelled, close within 1 s, no backend left, no noise", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const { closeMillis, exits } = yield* closeWhileBusy(20, "children")
      assert.isBelow(closeMillis, 1000)
      assert.isTrue(exits.every(Exit.isInterrupted))
      assert.deepStrictEqual(logs.noisy(), [])
    }).pipe(logs.provide)
  })

  it.live("1./2. leases held outside the scope are force-released at closeTimeout; flat in size (20 vs 100)", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const small = yield* closeWhileBusy(20, "daemon")
      const large = yield* closeWhileBusy(100, "daemon")
      // the default closeTimeout (500 ms), then every cancel + Terminate at once: never one by one
      assert.isBelow(small.closeMillis, 2000, `close of 20: ${small.closeMillis} ms`)
      assert.isBelow(large.closeMillis, 2000, `close of 100: ${large.closeMillis} ms`)
      assert.isAtMost(
        large.closeMillis,
        2 * small.closeMillis,
        `20: ${small.closeMillis} ms, 100: ${large.closeMillis} ms`
      )
      // every holder got a typed error, none hangs
      for (const exit of [...small.exits, ...large.exits]) {
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          assert.strictEqual((error as any)?._tag, "SqlError", String(exit.cause))
        }
      }
      // one Warning per pool says leases were revoked; nothing else
      assert.strictEqual(logs.noisy().length, 2, JSON.stringify(logs.noisy()))
      assert.isTrue(logs.noisy().every((l) => l.message.includes("lease(s) still held after closeTimeout")))
    }).pipe(logs.provide)
  })
})
