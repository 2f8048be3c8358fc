/**
 * D10: a password never appears in an error or a log line, whatever the URL looks like. The
 * shapes the review found — a `/` in an unencoded password, `postgres//`, `postgres:/` (read
 * as a database name and printed three times), `p@ss/word` — each fail with a
 * `PoolConfigError` before anything connects; if one were accepted, the statement run
 * through it would show how it was read. Text taken from a driver's error (a connect error's
 * cause) has its passwords masked as the URL parser reads them. The random version of these
 * cases is `packages/pg/test/secrets.prop.test.ts`.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PoolConfigError } from "@scoped-pool/core/PoolError"
import { PgPool } from "@scoped-pool/pg"
import { PgConnectError } from "@scoped-pool/pg/PgError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { classify, withLogs } from "../support/faults.js"
import type { captureLogs } from "../support/logs.js"
import { freePort } from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"

const { applicationName } = testDb(import.meta.url)

/** Every text a user or a log could show: the error, its cause, their JSON, and the log lines. */
const texts = (cause: Cause.Cause<unknown>, logs: ReturnType<typeof captureLogs>): ReadonlyArray<string> => {
  const errors = [...Cause.failures(cause), ...Cause.defects(cause)]
  return [
    Cause.pretty(cause),
    ...errors.flatMap((e) => {
      const error = e as { readonly message?: unknown; readonly cause?: unknown }
      return [
        String(error.message),
        String(e),
        String(JSON.stringify(e)),
        String(error.cause),
        String(JSON.stringify(error.cause))
      ]
    }),
    ...logs.lines.map((l) => `${l.message} ${JSON.stringify(l.annotations)}`)
  ]
}

/** Pieces of a password that must not show: the whole, and each run of 3+ characters between its separators. */
const piecesOf = (password: string) => [password, ...password.split(/[^A-Za-z0-9]+/).filter((p) => p.length >= 3)]

/** Builds a pool on `url`; if it builds, runs a statement through it. Returns the cause of the failure. */
const attempt = (url: string) =>
  PgPool.make({ url, applicationName, connectTimeout: "1 second", acquireTimeout: "1 second" }).pipe(
    Effect.flatMap((pg) => pg.sql`SELECT 1`),
    Effect.scoped,
    Effect.provide(Reactivity.layer),
    Effect.exit
  )

describe("D10 no password in any error or log, whatever the URL looks like", () => {
  const shapes: ReadonlyArray<readonly [string, string, (port: number) => string]> = [
    ["an unencoded '/' in the password", "Zq3cr/etX", (port) => `postgres://u:Zq3cr/etX@127.0.0.1:${port}/db`],
    ["postgres// (no colon)", "ZqpwQv", (port) => `postgres//u:ZqpwQv@127.0.0.1:${port}/db`],
    ["postgres:/ (one slash)", "ZqpwQv", (port) => `postgres:/u:ZqpwQv@127.0.0.1:${port}/db`],
    ["p@ss/word unencoded", "p@ssZq/wordZq", (port) => `postgres://u:p@ssZq/wordZq@127.0.0.1:${port}/db`],
    ["a '#' in the password", "1234#ZqfragX", () => `postgres://u:1234#ZqfragX@127.0.0.1/db`],
    ["a '?' in the password", "5432?Zqq=rY", () => `postgres://u:5432?Zqq=rY@127.0.0.1/db`],
    ["a bad percent escape", "Zq%zzPw", (port) => `postgres://u:Zq%zzPw@127.0.0.1:${port}/db`],
    ["key=value, an unquoted space", "ZqAb Zqcd=Zqef", (port) => `host=127.0.0.1 port=${port} password=ZqAb Zqcd=Zqef`],
    ["key=value, no closing quote", "ZqAb Zqcd", (port) => `host=127.0.0.1 port=${port} password='ZqAb Zqcd`]
  ]
  for (const [name, password, urlOf] of shapes) {
    it.live(`D10 ${name}: PoolConfigError before connecting, and no piece of the password anywhere`, () =>
      withLogs((logs) =>
        Effect.gen(function*() {
          const port = yield* Effect.promise(() => freePort())
          const exit = yield* attempt(urlOf(port))
          assert.isTrue(Exit.isFailure(exit))
          const cause = (exit as Exit.Failure<unknown, unknown>).cause
          for (const text of texts(cause, logs)) {
            for (const piece of piecesOf(password)) {
              assert.notInclude(text, piece, `a piece of the password in: ${text}`)
            }
          }
          const error = Cause.failureOption(cause)
          assert.isTrue(error._tag === "Some" && error.value instanceof PoolConfigError, classify(error))
        })
      ))
  }
})

describe("D10 text from a driver's error is masked by the URL parser", () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ["Zq3cr/etX", "invalid target postgres://u:Zq3cr/etX@h/db (refused)"],
    ["p@ssZq", "invalid target postgres://u:p@ssZq@h:5432/db (refused)"],
    ["a:ZqColon", "invalid target postgresql://u:a:ZqColon@h/db"],
    ["Zq%2Fenc", "invalid target postgres://u:Zq%2Fenc@h/db and again Zq/enc"],
    ["ZqKeyVal", "bad connection string host=h password=ZqKeyVal user=u"],
    ["Zq quoted", "bad connection string host=h password='Zq quoted' user=u"]
  ]
  for (const [password, text] of cases) {
    it(`D10 ${JSON.stringify(text)}`, () => {
      const error = new PgConnectError({
        reason: "Unreachable",
        host: "h",
        port: 5432,
        database: "db",
        user: "u",
        cause: new Error(text)
      })
      const decoded = decodeURIComponent(password)
      for (const piece of [...piecesOf(password), ...piecesOf(decoded)]) {
        assert.notInclude(error.message, piece, error.message)
      }
      assert.include(error.message, "***")
    })
  }
})
