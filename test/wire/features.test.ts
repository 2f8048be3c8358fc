/**
 * What the wire client does besides queries (issue 12 line 2), each against a real server
 * unless the server cannot be made to do it: Unix sockets, a user-supplied duplex stream (for
 * the connection and for each cancel), protocol 3.2 negotiated down by PostgreSQL 17,
 * ParameterStatus, notices logged at Debug inside the statement's span, and a cancel key of 32
 * bytes (as PostgreSQL 18 sends in 3.2), against a small fake server that records it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { optionsFromUrl } from "../pg/options.js"
import { activeCount } from "../support/backends.js"
import * as PgServer from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)
const options = optionsFromUrl(url, applicationName)

describe("transports", () => {
  it.live("a Unix socket: host is the socket's directory", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "scoped-pool-sock-"))
      Fs.chmodSync(dir, 0o777)
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => PgServer.start({ maxConnections: 10, settings: { unix_socket_directories: dir } })),
        (server) =>
          Effect.promise(() => server.stop()).pipe(
            Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
          )
      )
      const conn = yield* PgConnection.make(optionsFromUrl(server.url, applicationName, { host: dir }))
      const { rows } = yield* conn.query("SELECT inet_server_addr() IS NULL AS local", [])
      assert.isTrue(rows[0].local)
      // the cancel goes through the socket too
      const outcome = yield* Effect.exit(conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("100 millis")))
      assert.isTrue(Exit.isFailure(outcome))
      assert.strictEqual(
        yield* Effect.promise(() => activeCount(server.url, applicationName, "SELECT pg_sleep(10)")),
        0
      )
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("a user-supplied duplex stream, opened again for each cancel's side socket", () =>
    Effect.gen(function*() {
      let opened = 0
      const conn = yield* PgConnection.make({
        ...options,
        stream: () => {
          opened++
          return Net.connect(options.port!, options.host)
        }
      })
      assert.strictEqual(opened, 1)
      assert.deepStrictEqual((yield* conn.query("SELECT $1::int AS v", [7])).rows, [{ v: 7 }])
      const outcome = yield* Effect.exit(conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("100 millis")))
      assert.isTrue(Exit.isFailure(outcome))
      assert.isAtLeast(opened, 2)
      assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "SELECT pg_sleep(10)")), 0)
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
    }).pipe(Effect.scoped))
})

describe("keepalive", () => {
  // A socket's keepalive cannot be read back: the stream factory hands out sockets whose
  // setKeepAlive is recorded (the wire client calls it on a socket it is given, as on its own).
  const recorded = (calls: Array<[boolean, number]>) => () => {
    const socket = Net.connect(options.port!, options.host)
    const setKeepAlive = socket.setKeepAlive.bind(socket)
    socket.setKeepAlive = (enable?: boolean, delay?: number) => {
      calls.push([enable ?? false, delay ?? 0])
      return setKeepAlive(enable, delay)
    }
    return socket
  }

  it.live("on by default, first probe after 30 s, on the session's socket and not on a cancel's", () =>
    Effect.gen(function*() {
      const calls: Array<[boolean, number]> = []
      const conn = yield* PgConnection.make({ ...options, stream: recorded(calls) })
      yield* Effect.exit(conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("100 millis")))
      assert.deepStrictEqual(calls, [[true, 30_000]])
    }).pipe(Effect.scoped))

  it.live("keepAliveInitialDelay sets the first probe; keepAlive: false leaves it off", () =>
    Effect.gen(function*() {
      const delayed: Array<[boolean, number]> = []
      yield* PgConnection.make({ ...options, keepAliveInitialDelay: "5 seconds", stream: recorded(delayed) })
      assert.deepStrictEqual(delayed, [[true, 5_000]])
      const off: Array<[boolean, number]> = []
      yield* PgConnection.make({ ...options, keepAlive: false, stream: recorded(off) })
      assert.deepStrictEqual(off, [])
    }).pipe(Effect.scoped))
})

describe("protocol", () => {
  it.live("asking for 3.2: PostgreSQL 17 answers NegotiateProtocolVersion and the session runs on 3.0", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make({ ...options, protocol: "3.2" })
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
      const outcome = yield* Effect.exit(conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("100 millis")))
      assert.isTrue(Exit.isFailure(outcome))
      assert.isTrue(conn.isAlive)
    }).pipe(Effect.scoped))

  it.live("ParameterStatus: the server's parameters, kept up to date", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make(options)
      assert.match(conn.parameter("server_version") ?? "", /^\d+/)
      assert.strictEqual(conn.parameter("application_name"), applicationName)
      yield* conn.query("SET application_name = 'sp-renamed'", [])
      assert.strictEqual(conn.parameter("application_name"), "sp-renamed")
      yield* conn.query("RESET application_name", [])
    }).pipe(Effect.scoped))

  it.live("notices are logged at Debug, in the caller's fiber, inside its span", () =>
    Effect.gen(function*() {
      const seen: Array<{ level: string; message: string; span: string | undefined }> = []
      const logger = Logger.make(({ context, logLevel, message }) => {
        const span = Context.getOption(FiberRefs.getOrDefault(context, FiberRef.currentContext), Tracer.ParentSpan)
        seen.push({
          level: logLevel.label,
          message: String(Array.isArray(message) ? message.join(" ") : message),
          span: Option.isSome(span) && span.value._tag === "Span" ? span.value.name : undefined
        })
      })
      const conn = yield* PgConnection.make(options)
      yield* conn.query("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$", []).pipe(
        Effect.withSpan("my-statement"),
        Logger.withMinimumLogLevel(LogLevel.Debug),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const notice = seen.find((line) => line.message.includes("hello 42"))
      assert.isDefined(notice)
      assert.strictEqual(notice!.level, "DEBUG")
      assert.strictEqual(notice!.span, "my-statement")
    }).pipe(Effect.scoped))
})

/** A fake server: startup with a 32-byte cancel key, then silence until cancelled. */
const fakeServer = Effect.acquireRelease(
  Effect.async<{ readonly server: Net.Server; readonly keys: Array<Buffer>; readonly sockets: Set<Net.Socket> }>(
    (resume) => {
      const keys: Array<Buffer> = []
      const sockets = new Set<Net.Socket>()
      const key = Buffer.alloc(32, 0x5a)
      let main: Net.Socket | undefined
      const msg = (type: string, body: Buffer) => {
        const out = Buffer.alloc(5 + body.length)
        out.write(type, 0, "latin1")
        out.writeInt32BE(4 + body.length, 1)
        body.copy(out, 5)
        return out
      }
      const server = Net.createServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => undefined)
        let started = false
        socket.on("data", (chunk: Buffer) => {
          if (!started) {
            started = true
            const code = chunk.readInt32BE(4)
            if (code === 80877102) {
              keys.push(Buffer.from(chunk.subarray(12, chunk.readInt32BE(0))))
              main?.write(Buffer.concat([
                msg("E", Buffer.from("SERROR\0VERROR\0C57014\0Mcanceling statement due to user request\0\0")),
                msg("Z", Buffer.from("I"))
              ]))
              socket.end()
              return
            }
            main = socket
            const keyData = Buffer.alloc(4 + key.length)
            keyData.writeInt32BE(4242, 0)
            key.copy(keyData, 4)
            socket.write(
              Buffer.concat([msg("R", Buffer.from([0, 0, 0, 0])), msg("K", keyData), msg("Z", Buffer.from("I"))])
            )
            return
          }
          if (chunk[0] === 0x58 /* X: Terminate */) socket.end()
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, keys, sockets })))
    }
  ),
  ({ server, sockets }) =>
    Effect.async<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resume(Effect.void))
    })
)

describe("cancel keys of any length", () => {
  it.live("a 32-byte BackendKeyData key goes back whole in the CancelRequest", () =>
    Effect.gen(function*() {
      const fake = yield* fakeServer
      const port = (fake.server.address() as Net.AddressInfo).port
      const conn = yield* PgConnection.make({ host: "127.0.0.1", port, database: "x", user: "x", protocol: "3.2" })
      assert.strictEqual(conn.processId, 4242)
      const outcome = yield* Effect.exit(conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("50 millis")))
      assert.isTrue(Exit.isFailure(outcome))
      assert.strictEqual(fake.keys.length, 1)
      assert.deepStrictEqual(fake.keys[0], Buffer.alloc(32, 0x5a))
      assert.isTrue(conn.isAlive)
    }).pipe(Effect.scoped))
})
