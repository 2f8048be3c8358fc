import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { activeCount, eventuallyActive, eventuallyNoBackends } from "../support/backends.js"
import { spawnFixture } from "../support/child.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

describe("3. queryTimeout's server-side safety net", () => {
  it.live("a client killed with SIGKILL mid-query cannot cancel; the server's statement_timeout ends the query", () =>
    Effect.gen(function*() {
      // queryTimeout 1 s → statement_timeout 2 s on the server
      const child = yield* spawnFixture("child-sigterm.ts", {
        DATABASE_URL: url,
        PGAPPNAME: applicationName,
        PGPOOL_QUERY_TIMEOUT: "1 second"
      })
      yield* eventuallyActive(url, applicationName, {
        count: 5,
        queryLike: "SELECT pg_sleep(60)",
        within: "20 seconds"
      })
      const killedAt = Date.now()
      child.process.kill("SIGKILL")
      yield* Effect.promise(() => child.exited)
      // nothing on the client side could cancel: the statements still run…
      assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "SELECT pg_sleep(60)")), 5)
      // …until the safety net ends them, 2 s after they started
      yield* eventuallyNoBackends(url, applicationName, { within: "3 seconds" })
      assert.isBelow(Date.now() - killedAt, 3000)
    }).pipe(Effect.scoped))
})
