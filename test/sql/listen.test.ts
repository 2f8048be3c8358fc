import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import pg from "pg"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

// Terminates the listen connection's backend from a separate connection.
const terminateListener = Effect.promise(async () => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
      [`${applicationName}-listen`]
    )
    return rows.length
  } finally {
    await client.end()
  }
})

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
        // NOTIFY until the subscriber saw one: a bounded wait on the server, no sleep.
        const notifyUntil = (payload: string) =>
          pg.sql.notify("jobs", payload).pipe(
            Effect.repeat({ schedule: Schedule.spaced("25 millis"), until: () => received.includes(payload) }),
            Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`${payload} never arrived`) })
          )
        yield* notifyUntil("before")
        assert.strictEqual(yield* terminateListener, 1)
        yield* notifyUntil("after")
        assert.isTrue(received.includes("before") && received.includes("after"))
        yield* Fiber.interrupt(fiber)
      }))
  })
})
