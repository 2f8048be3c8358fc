import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Net from "node:net"
import pg from "pg"
import { spawnFixture } from "../support/child.js"
import * as PgServer from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"

const { applicationName } = testDb(import.meta.url)

// A throwaway server that logs at DEBUG1, where PostgreSQL reports a client gone without Terminate.
const debugServer = Effect.acquireRelease(
  Effect.promise(() => PgServer.start({ maxConnections: 20, settings: { log_min_messages: "debug1" } })),
  (server) => Effect.promise(() => server.stop())
)

const unexpectedEof = (log: ReadonlyArray<string>) => log.filter((line) => line.includes("unexpected EOF"))

const lastWorkAt = (output: string) => Number(/LAST_WORK (\d+)/.exec(output)?.[1])

describe("S5 forgotten dispose", () => {
  it.live("the server log shows a client that vanished without Terminate (the check below can fail)", () =>
    Effect.gen(function*() {
      const server = yield* debugServer
      yield* Effect.promise(async () => {
        const client = new pg.Client({ connectionString: server.url, application_name: applicationName })
        client.on("error", () => undefined)
        await client.connect()
        await new Promise<void>((resolve) => {
          const socket = (client as unknown as { connection: { stream: Net.Socket } }).connection.stream
          socket.once("close", () => resolve())
          socket.destroy()
        })
      })
      yield* Effect.promise(() => waitFor(() => unexpectedEof(server.log).length > 0, 2000))
      assert.isAbove(unexpectedEof(server.log).length, 0)
    }).pipe(Effect.scoped))

  it.live("exits by itself within 2 s of its last work, terminates its connections, and warns once", () =>
    Effect.gen(function*() {
      const server = yield* debugServer
      const child = yield* spawnFixture("child-forgotten-dispose.ts", {
        DATABASE_URL: server.url,
        PGAPPNAME: applicationName
      })
      const exit = yield* Effect.promise(() => child.exited)
      const output = child.output()
      assert.strictEqual(exit.code, 0, output)
      assert.isBelow(exit.at - lastWorkAt(output), 2000, output)
      const warnings = output.split("\n").filter((line) => line.includes("level=WARN"))
      assert.strictEqual(warnings.length, 1, output)
      assert.include(warnings[0], "was not closed")
      assert.include(warnings[0], "dispose the ManagedRuntime")
      assert.deepStrictEqual(unexpectedEof(server.log), [])
      assert.notInclude(output, server.password)
    }).pipe(Effect.scoped))

  it.live("a pool with work in flight keeps the process alive until that work ends", () =>
    Effect.gen(function*() {
      const server = yield* debugServer
      const child = yield* spawnFixture("child-forgotten-dispose.ts", {
        DATABASE_URL: server.url,
        PGAPPNAME: applicationName,
        IN_FLIGHT: "1"
      })
      const exit = yield* Effect.promise(() => child.exited)
      const output = child.output()
      assert.strictEqual(exit.code, 0, output)
      const inFlightDone = Number(/IN_FLIGHT_DONE (\d+)/.exec(output)?.[1])
      assert.isAtLeast(inFlightDone - lastWorkAt(output), 900, output)
      assert.isBelow(exit.at - inFlightDone, 2000, output)
      assert.deepStrictEqual(unexpectedEof(server.log), [])
    }).pipe(Effect.scoped))
})

// Waits (wall clock, bounded) for the server to write a log line: an external system.
const waitFor = async (condition: () => boolean, withinMillis: number) => {
  const deadline = Date.now() + withinMillis
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
}
