import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import { eventuallyActive, eventuallyNoBackends } from "../support/backends.js"
import { spawnFile } from "../support/child.js"
import { freePort } from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

/** Waits (bounded, wall clock) until the child printed `text`: its output is an external system. */
const printed = (output: () => string, text: string, withinMillis: number) =>
  Effect.promise(async () => {
    const deadline = Date.now() + withinMillis
    while (!output().includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    return output().includes(text)
  })

/** The module specifiers a file imports. */
const importsOf = (file: string) =>
  [...readFileSync(file, "utf8").matchAll(/^import .* from "([^"]+)"$/gm)].map((m) => m[1]!)

describe("examples", () => {
  it("quickstart.ts imports only public packages (a user can copy it)", () => {
    const imports = importsOf("examples/quickstart.ts")
    assert.isNotEmpty(imports)
    for (const specifier of imports) {
      assert.match(specifier, /^(effect|@effect\/[a-z-]+|@scoped-pool\/(pg|core|testing))(\/[A-Za-z]+)?$/, specifier)
    }
  })

  it.live(
    "quickstart.ts: without DATABASE_URL it starts an embedded server, runs, prints, and cleans up",
    () =>
      Effect.gen(function*() {
        const env: Record<string, string> = { PGAPPNAME: `${applicationName}-quickstart` }
        const child = yield* spawnFile("examples/quickstart.ts", env, ["DATABASE_URL", "PGHOST"])
        const exit = yield* Effect.promise(() => child.exited)
        const output = child.output()
        assert.strictEqual(exit.code, 0, output)
        assert.include(output, "no DATABASE_URL: starting an embedded PostgreSQL")
        assert.include(output, "body: 'scoped world'")
        assert.match(output, /timeout: timed out after \d+ ms; pg_sleep still running on the server: 0/)
        assert.include(output, "pool closed, server stopped: bye")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("script.ts: runs its statements in Effect.scoped and closes the pool", () =>
    Effect.gen(function*() {
      const app = `${applicationName}-script`
      const child = yield* spawnFile("examples/script.ts", { DATABASE_URL: url, PGAPPNAME: app })
      const exit = yield* Effect.promise(() => child.exited)
      assert.strictEqual(exit.code, 0, child.output())
      assert.match(child.output(), /leased backend pid \d+/)
      assert.include(child.output(), "done: pool closed")
      yield* eventuallyNoBackends(url, app, { within: "1 second" })
    }).pipe(Effect.scoped))

  it.live("worker-threads.ts: one pool per worker, connections bounded by workers × max", () =>
    Effect.gen(function*() {
      const child = yield* spawnFile("examples/worker-threads.ts", { DATABASE_URL: url, WORKERS: "2" })
      const exit = yield* Effect.promise(() => child.exited)
      const output = child.output()
      assert.strictEqual(exit.code, 0, output)
      const reports = output.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      assert.strictEqual(reports.length, 2)
      for (const report of reports) {
        assert.strictEqual(report.statements, 20)
        assert.isAtMost(report.backends, 2)
        assert.isAtMost(report.poolSize, 2)
      }
      assert.include(output, "at most 2 × 2")
    }).pipe(Effect.scoped))

  it.live("http-server.ts: serves, and on SIGTERM finishes the in-flight request before the pool closes", () =>
    Effect.gen(function*() {
      const app = `${applicationName}-http`
      const port = yield* Effect.promise(() => freePort())
      const child = yield* spawnFile("examples/http-server.ts", {
        DATABASE_URL: url,
        PGAPPNAME: app,
        PORT: String(port),
        SHUTDOWN_DEADLINE: "3000"
      })
      assert.isTrue(yield* printed(child.output, "Listening on", 15_000), child.output())
      const now = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/now`).then((r) => r.json() as Promise<{ now: unknown }>)
      )
      assert.isString(now.now)
      const slow = fetch(`http://127.0.0.1:${port}/slow?seconds=1`).then(async (r) => ({
        status: r.status,
        body: await r.json()
      }))
      yield* eventuallyActive(url, app, { count: 1, queryLike: "SELECT pg_sleep%", within: "5 seconds" })
      child.process.kill("SIGTERM")
      const response = yield* Effect.promise(() => slow)
      assert.deepStrictEqual(response, { status: 200, body: { slept: 1 } })
      const exit = yield* Effect.promise(() => child.exited)
      assert.strictEqual(exit.code, 0, child.output())
      yield* eventuallyNoBackends(url, app, { within: "1 second" })
      // Each phase of the shutdown is logged, in order.
      const phases = ["shutdown 1/3", "shutdown 2/3", "shutdown 3/3"].map((p) => child.output().indexOf(p))
      assert.isTrue(phases.every((at, i) => at > (i === 0 ? -1 : phases[i - 1]!)), child.output())
    }).pipe(Effect.scoped))

  it.live("http-server.ts: bad input gets a 400 with a JSON body that says what is wrong", () =>
    Effect.gen(function*() {
      const app = `${applicationName}-http-bad`
      const port = yield* Effect.promise(() => freePort())
      const child = yield* spawnFile("examples/http-server.ts", {
        DATABASE_URL: url,
        PGAPPNAME: app,
        PORT: String(port)
      })
      assert.isTrue(yield* printed(child.output, "Listening on", 15_000), child.output())
      const response = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/slow?seconds=abc`).then(async (r) => ({
          status: r.status,
          type: r.headers.get("content-type"),
          body: await r.json() as { error: string; detail: string }
        }))
      )
      assert.strictEqual(response.status, 400)
      assert.include(response.type, "application/json")
      assert.strictEqual(response.body.error, "bad request")
      assert.include(response.body.detail, "seconds")
      child.process.kill("SIGTERM")
      const exit = yield* Effect.promise(() => child.exited)
      assert.strictEqual(exit.code, 0, child.output())
    }).pipe(Effect.scoped))

  it.live(
    "opentelemetry.ts: exports the statements' spans under their parent and the pool's metrics",
    () =>
      Effect.gen(function*() {
        const child = yield* spawnFile("examples/opentelemetry.ts", {
          DATABASE_URL: url,
          PGAPPNAME: `${applicationName}-otel`
        })
        const exit = yield* Effect.promise(() => child.exited)
        const output = child.output()
        assert.strictEqual(exit.code, 0, output)
        assert.include(output, "name: 'sql.execute'")
        assert.include(output, "name: 'report.build'")
        assert.include(output, "'db.system.name': 'postgresql'")
        // The pool's metrics (named after OpenTelemetry's db.client.connection.* conventions,
        // formerly scoped_pool_*), exported by the SDK's metric reader.
        assert.match(output, /name: '(db\.client\.connection\.[a-z_.]+|scoped_pool_[a-z_]+)'/)
      }).pipe(Effect.scoped),
    60_000
  )
})
