import { assert, describe, it } from "@effect/vitest"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as PgError from "@scoped-pool/pg/PgError"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import { backendsOf } from "../support/backends.js"
import { failureOf } from "../support/exits.js"
import { freePort } from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"
import { connectValid, optionsFromUrl, passwordOf } from "./options.js"

const { applicationName, url } = testDb(import.meta.url)
const options = optionsFromUrl(url, applicationName)

const connectFailure = (overrides: Partial<PgConnection.PgConnectionOptions>) =>
  connectValid({ ...options, ...overrides }).pipe(Effect.scoped, Effect.exit, Effect.map(failureOf))

const assertNoSecret = (error: PgError.PgConnectError, secrets: ReadonlyArray<string>) => {
  const texts = [error.message, JSON.stringify(error), String(error), JSON.stringify(error.toJSON())]
  for (const text of texts) {
    for (const secret of secrets) assert.notInclude(text, secret)
    assert.notInclude(text, "postgres://")
  }
}

describe("PgConnection.make", () => {
  it.live("connects and runs a query with parameters", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid(options)
      assert.isTrue(PgConnection.isPgConnection(conn))
      assert.isTrue(conn.isAlive)
      assert.isFalse(conn.busy)
      assert.strictEqual(conn.transactionStatus, "idle")
      const { command, rowCount, rows } = yield* conn.query("SELECT $1::int + 1 AS answer, $2::text AS name", [
        41,
        "x"
      ])
      assert.deepStrictEqual(rows, [{ answer: 42, name: "x" }])
      assert.strictEqual(command, "SELECT")
      assert.strictEqual(rowCount, 1)
      const pid = yield* conn.query("SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app", [])
      assert.strictEqual(pid.rows[0].pid, conn.processId)
      assert.strictEqual(pid.rows[0].app, applicationName)
      const arrays = yield* conn.query("SELECT 1 AS a, 2 AS b", [], { rowMode: "array" })
      assert.deepStrictEqual(arrays.rows, [[1, 2]])
      const named1 = yield* conn.query("SELECT $1::int * 2 AS v", [2], { name: "double" })
      const named2 = yield* conn.query("SELECT $1::int * 2 AS v", [5], { name: "double" })
      assert.deepStrictEqual([named1.rows[0].v, named2.rows[0].v], [4, 10])
      const raw = yield* conn.queryRaw("SELECT 1 AS one; SELECT 'a' AS letter, 2 AS two", [])
      assert.strictEqual(raw.length, 2)
      assert.deepStrictEqual(raw[1]!.fields.map((f) => f.name), ["letter", "two"])
      assert.strictEqual(raw[1]!.fields[1]!.dataTypeID, 23)
      const last = yield* conn.query("SELECT 1 AS one; SELECT 2 AS two", [])
      assert.deepStrictEqual(last.rows, [{ two: 2 }])
    }).pipe(Effect.scoped))

  it.live("sends the startup parameters", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid({
        ...options,
        statementTimeout: "7 seconds",
        lockTimeout: "3 seconds",
        idleInTransactionTimeout: "1 minute"
      })
      const { rows } = yield* conn.query(
        "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt, " +
          "current_setting('idle_in_transaction_session_timeout') AS it",
        []
      )
      assert.deepStrictEqual(rows[0], { st: "7s", lt: "3s", it: "1min" })
    }).pipe(Effect.scoped))

  it.live("a server error is a PgQueryError with its SQLSTATE and the connection stays usable", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid(options)
      const error = failureOf(yield* Effect.exit(conn.query("SELEC 1", [])))
      assert.strictEqual(error._tag, "PgQueryError")
      assert.isTrue(PgError.isPgError(error))
      assert.strictEqual((error as PgError.PgQueryError).code, "42601")
      assert.isString((error as PgError.PgQueryError).position)
      const missing = failureOf(yield* Effect.exit(conn.query("SELECT * FROM no_such_table_here", [])))
      assert.strictEqual((missing as PgError.PgQueryError).code, "42P01")
      assert.include(missing.message, "42P01")
      assert.isTrue(conn.isAlive)
      assert.isFalse(conn.busy)
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped))

  it.live("a parameter that cannot be serialised fails the statement, not the connection", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid(options)
      const circular: Record<string, unknown> = {}
      circular.self = circular
      const error = failureOf(yield* Effect.exit(conn.query("SELECT $1::jsonb AS j", [circular])))
      assert.strictEqual(error._tag, "PgQueryError")
      assert.isUndefined((error as PgError.PgQueryError).code)
      assert.isTrue(conn.isAlive)
      assert.deepStrictEqual((yield* conn.query("SELECT 2 AS two", [])).rows, [{ two: 2 }])
    }).pipe(Effect.scoped))

  it.live("statements issued at once are pipelined and answered in order", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid(options)
      const order: Array<string> = []
      const started = yield* Deferred.make<void>()
      const slow = yield* Effect.fork(
        Effect.zipRight(
          Deferred.succeed(started, undefined),
          Effect.tap(
            conn.query("SELECT pg_sleep(0.2), 'slow' AS which", []),
            () => Effect.sync(() => order.push("slow"))
          )
        )
      )
      yield* Deferred.await(started)
      const fast = yield* conn.query("SELECT $1::text AS which", ["fast"])
      order.push("fast")
      assert.deepStrictEqual(fast.rows, [{ which: "fast" }])
      yield* Fiber.join(slow)
      assert.deepStrictEqual(order, ["slow", "fast"])
      const many = yield* Effect.all(
        Array.from({ length: 20 }, (_, i) => conn.query("SELECT $1::int AS i", [i])),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(many.map((r) => r.rows[0].i), Array.from({ length: 20 }, (_, i) => i))
      assert.isFalse(conn.busy)
      assert.strictEqual(conn.queueDepth, 0)
    }).pipe(Effect.scoped))
})

describe("PgConnection.make failures", () => {
  const secret = passwordOf(url)

  it.live("a wrong password is Authentication and the message holds no password", () =>
    Effect.gen(function*() {
      const wrong = "wrong-secret-Xy9"
      const error = yield* connectFailure({ password: Redacted.make(wrong) })
      assert.strictEqual(error._tag, "PgConnectError")
      assert.strictEqual(error.reason, "Authentication")
      assert.strictEqual(error.user, options.user)
      assertNoSecret(error, [wrong, secret])
      assert.include(error.message, "password")
    }))

  it.live("an unknown database is UnknownDatabase", () =>
    Effect.gen(function*() {
      const error = yield* connectFailure({ database: "no_such_database_sp" })
      assert.strictEqual(error.reason, "UnknownDatabase")
      assert.include(error.message, "no_such_database_sp")
      assertNoSecret(error, [secret])
    }))

  it.live("a closed port is Unreachable", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const error = yield* connectFailure({ port })
      assert.strictEqual(error.reason, "Unreachable")
      assert.strictEqual(error.port, port)
      assertNoSecret(error, [secret])
    }))

  it.live("a server that accepts and never answers is Timeout within connectTimeout", () =>
    Effect.gen(function*() {
      const sockets = new Set<Net.Socket>()
      const server = yield* Effect.acquireRelease(
        Effect.async<Net.Server>((resume) => {
          const server = Net.createServer((socket) => {
            sockets.add(socket)
            socket.on("close", () => sockets.delete(socket))
            socket.on("error", () => undefined)
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.async<void>((resume) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => resume(Effect.void))
          })
      )
      const port = (server.address() as Net.AddressInfo).port
      const startedAt = Date.now()
      const error = yield* connectFailure({ host: "127.0.0.1", port, connectTimeout: "300 millis" })
      const elapsed = Date.now() - startedAt
      assert.strictEqual(error.reason, "Timeout")
      assert.isAtLeast(elapsed, 250)
      assert.isBelow(elapsed, 1000)
      assertNoSecret(error, [secret])
      // The client side of the socket was destroyed: the server sees it close.
      assert.strictEqual(sockets.size <= 1, true)
    }).pipe(Effect.scoped))

  it.live("D21 invalid options fail typed (PoolConfigError) naming the field and the format, before connecting", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Partial<PgConnection.PgConnectionOptions>, string, string]> = [
        [{ cancelTimeout: 0 }, "cancelTimeout", "\"500 millis\""],
        [{ connectTimeout: "-1 second" }, "connectTimeout", "\"5 seconds\""],
        [{ queryTimeout: Number.NaN }, "queryTimeout", "a finite duration > 0"],
        [{ port: 70_000 }, "port", "[1, 65535]"],
        [{ statementCacheSize: -1 }, "statementCacheSize", ">= 0"]
      ]
      for (const [overrides, field, expected] of cases) {
        const error = yield* Effect.flip(PgConnection.make({ ...options, ...overrides }).pipe(Effect.scoped))
        assert.strictEqual(error._tag, "PoolConfigError", field)
        if (error._tag !== "PoolConfigError") continue
        assert.strictEqual(error.field, field)
        assert.include(error.message, expected)
      }
    }))
})

describe("PgConnection.cursor", () => {
  it.live("streams 10k rows in chunks", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid(options)
      const rows = yield* Stream.runCollect(
        conn.cursor("SELECT g AS n FROM generate_series(1, $1::int) AS g", [10_000], { chunkSize: 1000 })
      )
      assert.strictEqual(Chunk.size(rows), 10_000)
      assert.deepStrictEqual(Chunk.unsafeGet(rows, 9_999), { n: 10_000 })
      assert.strictEqual(Chunk.reduce(rows, 0, (sum, row) => sum + row.n), 50_005_000)
      assert.isFalse(conn.busy)
      const arrays = yield* Stream.runCollect(conn.cursor("SELECT 1, 2", [], { chunkSize: 10, rowMode: "array" }))
      assert.deepStrictEqual(Chunk.toReadonlyArray(arrays), [[1, 2]])
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped))

  it.live("stopping a stream mid-way closes the portal and leaves no running statement", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid(options)
      const taken = yield* Stream.runCollect(
        Stream.take(conn.cursor("SELECT g FROM generate_series(1, 100000) AS g", [], { chunkSize: 1000 }), 1500)
      )
      assert.strictEqual(Chunk.size(taken), 1500)
      assert.isFalse(conn.busy)
      assert.isTrue(conn.isAlive)
      const backends = yield* Effect.promise(() => backendsOf(url, applicationName))
      assert.deepStrictEqual(backends.map((b) => b.state), ["idle"])
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped))

  it.live("interrupting a slow fetch cancels it on the server", () =>
    Effect.gen(function*() {
      const conn = yield* connectValid(options)
      const startedAt = Date.now()
      const result = yield* Stream.runCollect(conn.cursor("SELECT pg_sleep(10)", [], { chunkSize: 1 })).pipe(
        Effect.timeout("100 millis"),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(result))
      assert.isBelow(Date.now() - startedAt, 600)
      assert.isFalse(conn.busy)
      assert.isTrue(conn.isAlive)
      const backends = yield* Effect.promise(() => backendsOf(url, applicationName))
      assert.deepStrictEqual(backends.map((b) => b.state), ["idle"])
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped))
})

describe("PgConnection.onNotification", () => {
  it.live("receives a notification after LISTEN and NOTIFY", () =>
    Effect.gen(function*() {
      const listener = yield* connectValid(options)
      const notifier = yield* connectValid(options)
      const received = yield* Deferred.make<PgConnection.Notification>()
      const unregister = listener.onNotification((n) => Deferred.unsafeDone(received, Exit.succeed(n)))
      yield* listener.query("LISTEN sp_channel", [])
      yield* notifier.query("SELECT pg_notify('sp_channel', $1)", ["hello"])
      const notification = yield* Deferred.await(received).pipe(Effect.timeout("2 seconds"))
      assert.strictEqual(notification.channel, "sp_channel")
      assert.strictEqual(notification.payload, "hello")
      assert.strictEqual(notification.processId, notifier.processId)
      unregister()
    }).pipe(Effect.scoped))
})
