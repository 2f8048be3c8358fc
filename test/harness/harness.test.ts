import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import pg from "pg"
import { backendsOf, eventuallyNoBackends } from "../support/backends.js"
import * as PgServer from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const connect = (database: string, name: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: database, application_name: name })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.end())
  )

describe("test harness", () => {
  it.live("the shared server answers queries", () =>
    Effect.gen(function*() {
      const client = yield* connect(url, applicationName)
      const { rows } = yield* Effect.promise(() => client.query<{ answer: number }>("SELECT 41 + 1 AS answer"))
      assert.strictEqual(rows[0]!.answer, 42)
    }).pipe(Effect.scoped))

  it.live("eventuallyNoBackends fails while a backend of the name is open and passes once it closed", () =>
    Effect.gen(function*() {
      const name = `${applicationName}-probe`
      const client = yield* Effect.promise(async () => {
        const client = new pg.Client({ connectionString: url, application_name: name })
        await client.connect()
        return client
      })
      assert.strictEqual((yield* Effect.promise(() => backendsOf(url, name))).length, 1)
      const whileOpen = yield* Effect.either(eventuallyNoBackends(url, name, { within: "100 millis" }))
      assert.isTrue(Either.isLeft(whileOpen))
      yield* Effect.promise(() => client.end())
      yield* eventuallyNoBackends(url, name, { within: "1 second" })
    }))

  it.live("a throwaway server starts, stops fast, restarts and leaves no data dir", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => PgServer.start({ maxConnections: 20 })),
        (server) => Effect.promise(() => server.stop())
      )
      const query = Effect.promise(async () => {
        const client = new pg.Client({ connectionString: server.url, application_name: applicationName })
        await client.connect()
        try {
          return (await client.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one
        } finally {
          await client.end()
        }
      })
      assert.strictEqual(yield* query, 1)
      yield* Effect.promise(() => server.pgCtlStop("fast"))
      const down = yield* Effect.either(Effect.tryPromise(() => backendsOf(server.url, applicationName)))
      assert.isTrue(Either.isLeft(down))
      yield* Effect.promise(() => server.restart())
      assert.strictEqual(yield* query, 1)
      yield* Effect.promise(() => server.stop())
      const exists = yield* Effect.promise(() => import("node:fs").then((fs) => fs.existsSync(server.dataDir)))
      assert.isFalse(exists)
    }).pipe(Effect.scoped))
})
