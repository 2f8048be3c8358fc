import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { eventuallyActive, eventuallyNoBackends } from "../support/backends.js"
import { spawnFixture } from "../support/child.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const signalWhileBusy = (signal: "SIGTERM" | "SIGINT", extraEnv: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const app = `${applicationName}-${signal}`
    const child = yield* spawnFixture("child-sigterm.ts", { DATABASE_URL: url, PGAPPNAME: app, ...extraEnv })
    yield* eventuallyActive(url, app, { count: 5, queryLike: "SELECT pg_sleep(60)", within: "20 seconds" })
    return { app, child }
  })

describe("S2 signals", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.live(`${signal}: the process exits within 2 s and its queries are gone on the server 500 ms later`, () =>
      Effect.gen(function*() {
        const { app, child } = yield* signalWhileBusy(signal)
        const sent = Date.now()
        child.process.kill(signal)
        const exit = yield* Effect.promise(() => child.exited)
        assert.isBelow(exit.at - sent, 2000, child.output())
        // interrupted by the signal, closed cleanly: exit code 0
        assert.strictEqual(exit.code, 0, child.output())
        yield* eventuallyNoBackends(url, app, { within: "500 millis" })
      }).pipe(Effect.scoped))
  }

  it.live("a second signal during a slow close forces the exit", () =>
    Effect.gen(function*() {
      const { app, child } = yield* signalWhileBusy("SIGTERM", { SLOW_CLOSE: "1" })
      child.process.kill("SIGTERM")
      // the first signal cancels the statements and closes the pool; then the close is stuck in a 30 s finalizer
      yield* eventuallyNoBackends(url, app, { within: "2 seconds" })
      assert.isNull(child.process.exitCode)
      const sent = Date.now()
      child.process.kill("SIGTERM")
      const exit = yield* Effect.promise(() => child.exited)
      assert.isBelow(exit.at - sent, 1000)
      assert.strictEqual(exit.signal, "SIGTERM")
      // the kernel closed the sockets; the server ends those backends
      yield* eventuallyNoBackends(url, app, { within: "2 seconds" })
    }).pipe(Effect.scoped))
})
