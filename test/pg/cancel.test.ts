import { assert, describe, it } from "@effect/vitest"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import type * as PgError from "@scoped-pool/pg/PgError"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import { backendsOf, eventuallyNoBackends } from "../support/backends.js"
import { failureOf } from "../support/exits.js"
import * as PgServer from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"
import { optionsFromUrl } from "./options.js"

const { applicationName, url } = testDb(import.meta.url)
const options = optionsFromUrl(url, applicationName)

/** Forks `conn.query(sql)` and returns once the statement has been handed to the socket. */
const forkRunning = (conn: PgConnection.PgConnection, sql: string) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(Effect.zipRight(Deferred.succeed(started, undefined), conn.query(sql, [])))
    yield* Deferred.await(started)
    assert.isTrue(conn.busy)
    return fiber
  })

/** Fails the test if the process sees an uncaught exception while the scope is open. */
const noUncaughtErrors = Effect.acquireRelease(
  Effect.sync(() => {
    const seen: Array<unknown> = []
    const listener = (error: unknown) => seen.push(error)
    process.on("uncaughtException", listener)
    return { seen, listener }
  }),
  ({ listener }) => Effect.sync(() => process.off("uncaughtException", listener))
)

const stateOf = (name: string, pid: number) =>
  Effect.map(Effect.promise(() => backendsOf(url, name)), (backends) => backends.find((b) => b.pid === pid)?.state)

describe("S3 an interrupted query is cancelled on the server", () => {
  it.live("Effect.timeout ends pg_sleep on the server before the interruption completes", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make(options)
      const startedAt = Date.now()
      const result = yield* conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("100 millis"), Effect.exit)
      const interruptedAfter = Date.now() - startedAt
      assert.isTrue(Exit.isFailure(result))
      // The server-side statement is already over when the timeout returns.
      assert.strictEqual(yield* stateOf(applicationName, conn.processId), "idle")
      assert.isBelow(interruptedAfter, 100 + 250)
      assert.isTrue(conn.isAlive)
      assert.isFalse(conn.busy)
      assert.strictEqual(conn.transactionStatus, "idle")
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped))

  it.live("Fiber.interrupt cancels the statement and the connection stays usable", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make(options)
      const fiber = yield* forkRunning(conn, "SELECT pg_sleep(10)")
      const startedAt = Date.now()
      yield* Fiber.interrupt(fiber)
      assert.isBelow(Date.now() - startedAt, 500)
      assert.strictEqual(yield* stateOf(applicationName, conn.processId), "idle")
      assert.deepStrictEqual((yield* conn.query("SELECT 2 AS two", [])).rows, [{ two: 2 }])
    }).pipe(Effect.scoped))

  it.live("cancel inside BEGIN leaves the transaction failed, rollbackIfDirty makes it idle", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make(options)
      yield* conn.query("BEGIN", [])
      assert.strictEqual(conn.transactionStatus, "transaction")
      const result = yield* conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("100 millis"), Effect.exit)
      assert.isTrue(Exit.isFailure(result))
      assert.strictEqual(conn.transactionStatus, "failed")
      const failed = failureOf(yield* Effect.exit(conn.query("SELECT 1", [])))
      assert.strictEqual((failed as PgError.PgQueryError).code, "25P02")
      assert.isTrue(yield* conn.rollbackIfDirty)
      assert.strictEqual(conn.transactionStatus, "idle")
      assert.isTrue(yield* conn.rollbackIfDirty)
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped))

  it.live("cancel confirms and the statement fails with 57014", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make(options)
      assert.strictEqual(yield* conn.cancel, "confirmed")
      const fiber = yield* forkRunning(conn, "SELECT pg_sleep(10)")
      assert.strictEqual(yield* conn.cancel, "confirmed")
      assert.isFalse(conn.busy)
      const error = failureOf(yield* Fiber.await(fiber))
      assert.strictEqual(error._tag, "PgQueryError")
      assert.strictEqual((error as PgError.PgQueryError).code, "57014")
      assert.include(error.message, "cancelled")
      assert.isTrue(conn.isAlive)
    }).pipe(Effect.scoped))

  it.live("a cancel never hits the next statement", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make(options)
      // Timeouts that race the statement's own end: the cancel arrives before, during or after it.
      for (let i = 0; i < 40; i++) {
        yield* conn.query("SELECT pg_sleep(0.005)", []).pipe(Effect.timeout(`${i % 8} millis`), Effect.exit)
        assert.isTrue(conn.isAlive)
        assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
      }
    }).pipe(Effect.scoped))
})

describe("S1 the scope's finalizer", () => {
  it.live("cancels a running pg_sleep(60), closes within 1 s and the backend is gone within 1 s", () =>
    Effect.gen(function*() {
      const name = `${applicationName}-close`
      const scope = yield* Scope.make()
      const conn = yield* PgConnection.make(optionsFromUrl(url, name)).pipe(Scope.extend(scope))
      const fiber = yield* forkRunning(conn, "SELECT pg_sleep(60)")
      const startedAt = Date.now()
      yield* Scope.close(scope, Exit.void)
      assert.isBelow(Date.now() - startedAt, 1000)
      yield* eventuallyNoBackends(url, name, { within: "1 second" })
      assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
      assert.isFalse(conn.isAlive)
      const after = failureOf(yield* Effect.exit(conn.query("SELECT 1", [])))
      assert.strictEqual(after._tag, "PgConnectionLost")
    }))

  it.live("closes an idle connection: Terminate, and the backend leaves", () =>
    Effect.gen(function*() {
      const name = `${applicationName}-idle`
      const scope = yield* Scope.make()
      yield* PgConnection.make(optionsFromUrl(url, name)).pipe(Scope.extend(scope))
      assert.strictEqual((yield* Effect.promise(() => backendsOf(url, name))).length, 1)
      yield* Scope.close(scope, Exit.void)
      yield* eventuallyNoBackends(url, name, { within: "1 second" })
    }))
})

describe("S7 a dropped connection", () => {
  it.live("pg_terminate_backend fails the running query with PgConnectionLost, with no unhandled error", () =>
    Effect.gen(function*() {
      const uncaught = yield* noUncaughtErrors
      const conn = yield* PgConnection.make(options)
      const killer = yield* PgConnection.make(options)
      const fiber = yield* forkRunning(conn, "SELECT pg_sleep(10)")
      yield* killer.query("SELECT pg_terminate_backend($1)", [conn.processId])
      const error = failureOf(yield* Fiber.await(fiber))
      assert.strictEqual(error._tag, "PgConnectionLost")
      const lost = error as PgError.PgConnectionLost
      assert.strictEqual(lost.reason, "Terminated")
      assert.strictEqual(lost.code, "57P01")
      assert.strictEqual(lost.processId, conn.processId)
      assert.isFalse(conn.isAlive)
      assert.isFalse(conn.busy)
      const next = failureOf(yield* Effect.exit(conn.query("SELECT 1", [])))
      assert.strictEqual(next._tag, "PgConnectionLost")
      assert.isFalse(yield* conn.rollbackIfDirty)
      assert.deepStrictEqual(uncaught.seen, [])
    }).pipe(Effect.scoped))

  it.live("pg_terminate_backend of an idle connection marks it dead, with no unhandled error", () =>
    Effect.gen(function*() {
      const uncaught = yield* noUncaughtErrors
      const conn = yield* PgConnection.make(options)
      const killer = yield* PgConnection.make(options)
      yield* killer.query("SELECT pg_terminate_backend($1)", [conn.processId])
      const error = failureOf(yield* Effect.exit(conn.query("SELECT pg_sleep(1)", [])))
      assert.strictEqual(error._tag, "PgConnectionLost")
      assert.isFalse(conn.isAlive)
      assert.deepStrictEqual(uncaught.seen, [])
    }).pipe(Effect.scoped))

  it.live("an immediate server shutdown fails the running query with PgConnectionLost", () =>
    Effect.gen(function*() {
      const uncaught = yield* noUncaughtErrors
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => PgServer.start({ maxConnections: 20 })),
        (server) => Effect.promise(() => server.stop())
      )
      const conn = yield* PgConnection.make(optionsFromUrl(server.url, applicationName))
      const fiber = yield* forkRunning(conn, "SELECT pg_sleep(10)")
      yield* Effect.promise(() => server.pgCtlStop("immediate"))
      const error = failureOf(yield* Fiber.await(fiber))
      assert.strictEqual(error._tag, "PgConnectionLost")
      assert.isFalse(conn.isAlive)
      assert.include(error.message, "retry")
      assert.deepStrictEqual(uncaught.seen, [])
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
