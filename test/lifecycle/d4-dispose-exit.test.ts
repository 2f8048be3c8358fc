/**
 * D4 (issue 11 item 4): `await runtime.dispose(); process.exit(0)` leaves no statement running
 * on the server. The pool's close returns only after every busy connection's CancelRequest
 * was sent and confirmed (in parallel, bounded by `cancelTimeout`) and Terminate written, so
 * an exit right after it abandons nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { activeCount, eventuallyActive, eventuallyNoBackends } from "../support/backends.js"
import { spawnFixture } from "../support/child.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

describe("D4 dispose, then process.exit", () => {
  it.live(
    "10 busy connections: every statement is over on the server when the process has exited",
    () =>
      Effect.gen(function*() {
        const child = yield* spawnFixture("child-dispose-exit.ts", {
          DATABASE_URL: url,
          PGAPPNAME: applicationName,
          PGPOOL_MAX: "10"
        })
        yield* eventuallyActive(url, applicationName, {
          count: 10,
          queryLike: "SELECT pg_sleep(30)",
          within: "20 seconds"
        })
        child.process.kill("SIGUSR2")
        const exit = yield* Effect.promise(() => child.exited)
        assert.strictEqual(exit.code, 0, child.output())
        // read once, right after the exit: nothing may still run
        const running = yield* Effect.promise(() => activeCount(url, applicationName, "SELECT pg_sleep(30)"))
        assert.strictEqual(running, 0, `${running} of 10 statements still running after exit; ${child.output()}`)
        // and the sessions end (Terminate was written)
        yield* eventuallyNoBackends(url, applicationName, { within: "1 second" })
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
