/**
 * LISTEN/NOTIFY on the pool's dedicated listen connection.
 *
 * - 5: it LISTENs again after the connection is lost.
 * - D7: a channel whose LISTEN fails (here `""`, a zero-length identifier) fails its own
 *   subscriber with an `SqlError` and is dropped; the session is not restarted for it, so the
 *   other channels lose no notification. The session learns of a lost connection from the
 *   connection's close event (`PgConnection.onClose`), and reconnects with backoff when its
 *   sessions keep ending soon after they start.
 * - D8: the session ends with its last subscriber (its backend is gone while the pool stays
 *   open), and a process that LISTENed once exits by itself (S5 with a listener).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import { PgConnectionLost } from "@scoped-pool/pg/PgError"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import pg from "pg"
import { eventuallyNoBackends } from "../support/backends.js"
import { spawnFixture } from "../support/child.js"
import * as TcpProxy from "../support/TcpProxy.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)
const listenName = `${applicationName}-listen`
const parsed = new URL(url)
const target = { host: parsed.hostname, port: Number(parsed.port || 5432) }
const credentials = {
  username: decodeURIComponent(parsed.username),
  password: Redacted.make(decodeURIComponent(parsed.password)),
  database: decodeURIComponent(parsed.pathname.slice(1)) || "postgres"
}

// Terminates the listen connection's backend from a separate connection.
const terminateListener = Effect.promise(async () => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
      [listenName]
    )
    return rows.length
  } finally {
    await client.end()
  }
})

/** NOTIFY until `received` holds `payload`: a bounded wait on the server, no sleep. */
const notifyUntil = (sql: PgPool.PgPool.Service["sql"], channel: string, payload: string, received: () => boolean) =>
  sql.notify(channel, payload).pipe(
    Effect.repeat({ schedule: Schedule.spaced("25 millis"), until: received }),
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`${payload} never arrived`) })
  )

describe("listen", () => {
  layer(PgPool.layer({ url: Redacted.make(url), applicationName, max: 2 }), { excludeTestServices: true })((it) => {
    it.effect("5. listen runs on a dedicated connection that LISTENs again after a reconnect", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const received: Array<string> = []
        const fiber = yield* Effect.fork(Stream.runForEach(pg.sql.listen("jobs"), (payload) =>
          Effect.sync(() => {
            received.push(payload)
          })))
        yield* notifyUntil(pg.sql, "jobs", "before", () => received.includes("before"))
        assert.strictEqual(yield* terminateListener, 1)
        yield* notifyUntil(pg.sql, "jobs", "after", () => received.includes("after"))
        assert.isTrue(received.includes("before") && received.includes("after"))
        yield* Fiber.interrupt(fiber)
      }))

    it.effect("D8 the listen session ends with its last subscriber: its backend is gone, the pool stays open", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const received: Array<string> = []
        const subscribers = yield* Effect.forEach(
          ["a", "b"],
          (channel) =>
            Effect.fork(Stream.runForEach(pg.sql.listen(channel), (payload) =>
              Effect.sync(() => {
                received.push(payload)
              })))
        )
        yield* notifyUntil(pg.sql, "a", "to-a", () => received.includes("to-a"))
        yield* notifyUntil(pg.sql, "b", "to-b", () => received.includes("to-b"))
        yield* Fiber.interrupt(subscribers[0]!)
        // one subscriber left: the session goes on
        yield* notifyUntil(pg.sql, "b", "still-b", () => received.includes("still-b"))
        yield* Fiber.interrupt(subscribers[1]!)
        yield* eventuallyNoBackends(url, listenName, { within: "2 seconds" })
        // the pool itself is open, and a new subscriber starts a new session
        const again = yield* Effect.fork(Stream.runHead(pg.sql.listen("c")))
        yield* pg.sql.notify("c", "again").pipe(
          Effect.repeat({ schedule: Schedule.spaced("25 millis"), until: () => again.unsafePoll() !== null }),
          Effect.timeout("5 seconds")
        )
        assert.strictEqual(Option.getOrUndefined(yield* Fiber.join(again)), "again")
        yield* eventuallyNoBackends(url, listenName, { within: "2 seconds" })
      }))
  })

  /** A pool through a proxy in front of the shared server, closed with the test's scope. */
  const proxiedPool = (options: PgPool.Options) =>
    Effect.gen(function*() {
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => TcpProxy.start(target)),
        (proxy) => Effect.promise(() => proxy.close())
      )
      const pg = yield* PgPool.make({ host: proxy.host, port: proxy.port, ...credentials, applicationName, ...options })
        .pipe(Effect.provide(Reactivity.layer))
      return { proxy, pg }
    })

  it.scopedLive(
    "D7 a channel whose LISTEN fails gets an SqlError; the session is not restarted, other channels lose nothing",
    () =>
      Effect.gen(function*() {
        const { pg, proxy } = yield* proxiedPool({ max: 1 })
        assert.strictEqual(proxy.accepted(), 1, "the pool's first connection")
        // The listen session's connection is slow to start, so both channels are subscribed
        // before it LISTENs: the failing one is met while the session starts.
        proxy.setMode({ latency: 100 }, "new")
        const bad = yield* Effect.fork(Effect.either(Stream.runDrain(pg.sql.listen(""))))
        const received: Array<string> = []
        const good = yield* Effect.fork(Stream.runForEach(pg.sql.listen("jobs"), (payload) =>
          Effect.sync(() => {
            received.push(payload)
          })))

        const failed = yield* Fiber.join(bad).pipe(Effect.timeout("5 seconds"))
        assert.isTrue(Either.isLeft(failed))
        const error = (failed as Either.Left<SqlError, void>).left
        assert.instanceOf(error, SqlError)
        assert.include(error.message, `LISTEN on channel "" failed`)
        assert.include(error.message, "zero-length delimited identifier")

        // the other channel: once its LISTEN is in place, every notification arrives, in order
        yield* notifyUntil(pg.sql, "jobs", "ready", () => received.includes("ready"))
        const payloads = Array.from({ length: 20 }, (_, i) => String(i + 1))
        yield* Effect.forEach(payloads, (p) => pg.sql.notify("jobs", p), { discard: true })
        yield* notifyUntil(pg.sql, "jobs", "end", () => received.includes("end"))
        assert.deepStrictEqual(received.filter((p) => p !== "ready" && p !== "end"), payloads)
        assert.strictEqual(proxy.accepted(), 2, "the pool's connection and one listen session")
        yield* Fiber.interrupt(good)
      })
  )

  it.scopedLive("D7 the connection's close event: onClose is called once, with PgConnectionLost, when the server ends the session", () =>
    Effect.gen(function*() {
      const conn = yield* PgConnection.make({
        host: target.host,
        port: target.port,
        user: credentials.username,
        password: credentials.password,
        database: credentials.database,
        applicationName: listenName
      })
      const calls: Array<unknown> = []
      const closed = yield* Deferred.make<void>()
      conn.onClose((lost) => {
        calls.push(lost)
        Deferred.unsafeDone(closed, Effect.void)
      })
      const unregistered: Array<unknown> = []
      const unregister = conn.onClose((lost) => unregistered.push(lost))
      unregister()
      assert.strictEqual(yield* terminateListener, 1)
      yield* Deferred.await(closed).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(calls.length, 1)
      assert.instanceOf(calls[0], PgConnectionLost)
      assert.strictEqual((calls[0] as PgConnectionLost).reason, "Terminated")
      assert.deepStrictEqual(unregistered, [])
      // registered on a dead connection: called at once
      const late: Array<unknown> = []
      conn.onClose((lost) => late.push(lost))
      assert.strictEqual(late.length, 1)
    }))

  it.scopedLive("D7 reconnects back off: sessions that end soon after they start are retried at growing intervals", () =>
    Effect.gen(function*() {
      // Every idle session is ended by the server after 150 ms, the listen session included.
      const starts: Array<number> = []
      const stream = () => {
        starts.push(Date.now())
        return new Net.Socket()
      }
      const pg = yield* PgPool.make({
        url: `${url}${url.includes("?") ? "&" : "?"}options=${encodeURIComponent("-c idle_session_timeout=150ms")}`,
        applicationName,
        lazy: true,
        stream
      }).pipe(Effect.provide(Reactivity.layer))
      const subscriber = yield* Effect.fork(Stream.runDrain(pg.sql.listen("jobs")))
      // wait for six sessions (bounded), each ended by the server
      yield* Effect.sync(() => starts.length).pipe(
        Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (n) => n >= 6 }),
        Effect.timeout("15 seconds")
      )
      yield* Fiber.interrupt(subscriber)
      const gaps = starts.slice(1, 6).map((t, i) => t - starts[i]!)
      // each gap is the session's life (~150 ms) plus a delay that doubles: 100, 200, 400, 800 ms
      assert.isAbove(gaps[4]! - gaps[0]!, 600, `gaps ${gaps.join(", ")} ms`)
      assert.isAbove(gaps[3]!, gaps[0]!, `gaps ${gaps.join(", ")} ms`)
      yield* eventuallyNoBackends(url, listenName, { within: "2 seconds" })
    }))

  it.scopedLive("D8 a process that LISTENed once exits by itself within 2 s of its last work (S5 with a listener)", () =>
    Effect.gen(function*() {
      const child = yield* spawnFixture("child-listen-once.ts", { DATABASE_URL: url, PGAPPNAME: applicationName })
      const exit = yield* Effect.promise(() => child.exited).pipe(Effect.timeout("10 seconds"), Effect.option)
      const output = child.output()
      assert.isTrue(exit._tag === "Some", `the child did not exit within 10 s:\n${output}`)
      const exited = (exit as { value: { code: number | null; at: number } }).value
      assert.strictEqual(exited.code, 0, output)
      assert.include(output, "payload=hello")
      const lastWork = Number(/LAST_WORK (\d+)/.exec(output)?.[1])
      assert.isBelow(exited.at - lastWork, 2000, output)
      yield* eventuallyNoBackends(url, listenName, { within: "2 seconds" })
    }))
})
