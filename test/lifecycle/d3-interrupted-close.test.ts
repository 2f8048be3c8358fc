/**
 * D3 (issue 11 item 3, the pg part): a pool closed by an interrupted fiber — `runMain` on
 * SIGTERM, or `Fiber.interrupt` of a program under `Effect.provide(layer)` — still waits
 * `closeTimeout` for its leases, then revokes those held outside the program's fiber tree
 * (`forkDaemon`) and cancels their statements on the server.
 *
 * Needs the core's close to run its wait uninterruptibly (issue 11 item 3, core branch).
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { activeCount, eventuallyActive, eventuallyNoBackends } from "../support/backends.js"
import { spawnFixture } from "../support/child.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

describe("D3 a pool closed by an interrupted fiber still revokes and cancels daemon-held leases", () => {
  it.live(
    "runMain on SIGTERM: the 5 daemon-held pg_sleep(30) are gone on the server when the child has exited",
    () =>
      Effect.gen(function*() {
        const app = `${applicationName}-sigterm`
        const child = yield* spawnFixture("child-daemon-sigterm.ts", {
          DATABASE_URL: url,
          PGAPPNAME: app,
          PGPOOL_CLOSE_TIMEOUT: "300 millis"
        })
        yield* eventuallyActive(url, app, { count: 5, queryLike: "SELECT pg_sleep(30)", within: "20 seconds" })
        const sent = Date.now()
        child.process.kill("SIGTERM")
        const exit = yield* Effect.promise(() => child.exited)
        const running = yield* Effect.promise(() => activeCount(url, app, "SELECT pg_sleep(30)"))
        assert.strictEqual(
          running,
          0,
          `${running} of 5 still running; exited after ${exit.at - sent} ms; ${child.output()}`
        )
        // the closeTimeout wait happened, and the exit still came quickly
        assert.isAtLeast(exit.at - sent, 300)
        assert.isBelow(exit.at - sent, 2000)
        yield* eventuallyNoBackends(url, app, { within: "1 second" })
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live("Fiber.interrupt of the program under Effect.provide(layer)", () =>
    Effect.gen(function*() {
      const app = `${applicationName}-interrupt`
      const started = yield* Effect.makeLatch(false)
      const program = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        for (let i = 0; i < 5; i++) yield* Effect.forkDaemon(sql`SELECT pg_sleep(30)`)
        yield* started.open
        return yield* Effect.never
      }).pipe(
        Effect.provide(
          PgPool.layer({ url: Redacted.make(url), applicationName: app, max: 5, closeTimeout: "300 millis" })
        )
      )
      const fiber = yield* Effect.fork(program)
      yield* started.await
      yield* eventuallyActive(url, app, { count: 5, queryLike: "SELECT pg_sleep(30)", within: "10 seconds" })
      const startedAt = Date.now()
      yield* Fiber.interrupt(fiber)
      const elapsed = Date.now() - startedAt
      const running = yield* Effect.promise(() => activeCount(url, app, "SELECT pg_sleep(30)"))
      assert.strictEqual(running, 0, `${running} of 5 still running after the interrupt (${elapsed} ms)`)
      assert.isAtLeast(elapsed, 300)
      assert.isBelow(elapsed, 2000)
      yield* eventuallyNoBackends(url, app, { within: "1 second" })
    }), { timeout: 60_000 })
})
