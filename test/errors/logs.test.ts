/**
 * Issue 15 line 6: what a user reads when a program fails. One clear ERROR line (with the
 * typed error's message and its cause's), no stack trace for an expected typed failure, no
 * "retrying" Warning for a failure the caller got at once, and a server error that says where
 * in the statement it is.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnFixture } from "../support/child.js"
import { freePort } from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const run = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const child = yield* spawnFixture("child-run-main-failure.ts", { FIXTURE_APP: applicationName, ...env })
    const exit = yield* Effect.promise(() => child.exited)
    return { code: exit.code, lines: child.output().split("\n").filter((line) => line.trim() !== "") }
  }).pipe(Effect.scoped)

const assertReadable = (lines: ReadonlyArray<string>) => {
  const text = lines.join("\n")
  assert.strictEqual(lines.filter((line) => line.includes("ERROR")).length, 1, text)
  assert.deepStrictEqual(lines.filter((line) => line.includes("WARN")), [], text)
  // no stack: no "at file:line" frame of ours, Effect's or Node's
  assert.deepStrictEqual(lines.filter((line) => /^\s+at /.test(line)), [], text)
  assert.isAtMost(lines.length, 6, text)
}

describe("15.6 logs a user reads", () => {
  it.live("an unreachable server: one ERROR with the classified connect error and its cause, no Warning, no stack", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const { code, lines } = yield* run({ FIXTURE_URL: `postgres://app:pw@127.0.0.1:${port}/app` })
      assert.strictEqual(code, 1)
      assertReadable(lines)
      const text = lines.join("\n")
      assert.include(text, `PgConnectError: could not connect to PostgreSQL at 127.0.0.1:${port}`)
      assert.include(text, "Unreachable")
      assert.include(text, "ECONNREFUSED")
    }), { timeout: 30_000 })

  it.live("a syntax error: one ERROR naming where in the statement, no stack", () =>
    Effect.gen(function*() {
      const { code, lines } = yield* run({ FIXTURE_URL: url })
      assert.strictEqual(code, 1)
      assertReadable(lines)
      const text = lines.join("\n")
      assert.include(text, "SqlError: syntax error at end of input")
      assert.match(text, /at character \d+ of the statement: line 1, column \d+/)
      // never the parameter's value
      assert.notInclude(text, "\"x\"")
    }), { timeout: 30_000 })
})
