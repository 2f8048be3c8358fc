/**
 * Issue 14 line 6 (and lines 1 and 3 on a real server): one `PgClientConfig` object is run
 * through `@effect/sql-pg`'s `PgClient.layer` and through `PgPool.layer`, unchanged, and the
 * two are compared on what a user can see: `sql.config`, the pool's size (`maxConnections`)
 * and what it keeps idle (`minConnections`), `connectionTTL` (a connection past it is
 * replaced), the server settings from the URL's `options`, a `stream` factory, and the
 * build-time failure on a wrong password. The two runs are sequential: they share the
 * application name, as they share the config.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import { backendsOf, eventuallyNoBackends, pollServer } from "../support/backends.js"
import { classify } from "../support/faults.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url, { within: "5 seconds" })
const parsed = new URL(url)
const withOptions = (base: string, options: string) =>
  `${base}${base.includes("?") ? "&" : "?"}options=${encodeURIComponent(options)}`

const transformResultNames = (name: string) => name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())
const spanAttributes = { "service.name": "dropin" }

/** The one config both layers get. */
const config: PgClient.PgClientConfig = {
  url: Redacted.make(withOptions(url, "-c search_path=dropin_schema,public -c work_mem=8MB")),
  applicationName,
  maxConnections: 3,
  minConnections: 1,
  idleTimeout: "300 millis",
  connectionTTL: "1 second",
  connectTimeout: "5 seconds",
  spanAttributes,
  transformResultNames
}

type Layers = Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown>
const contenders: ReadonlyArray<readonly [string, (config: PgClient.PgClientConfig) => Layers]> = [
  ["PgClient.layer", PgClient.layer],
  ["PgPool.layer", PgPool.layer]
]

/** `sql.config` with its Redacted values unwrapped and undefined fields dropped, for comparison. */
const comparable = (c: PgClient.PgClientConfig) =>
  Object.fromEntries(
    Object.entries(c).filter(([, v]) => v !== undefined).map((
      [k, v]
    ) => [k, Redacted.isRedacted(v) ? `Redacted(${Redacted.value(v)})` : v])
  )

interface Observed {
  readonly config: Record<string, unknown>
  readonly searchPath: string
  readonly workMem: string
  readonly transformed: ReadonlyArray<unknown>
  readonly peakBackends: number
  readonly replacedAfterTtl: boolean
}

/** What a user of `sql` sees with `layer(config)`. */
const observe = (layer: Layers) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(layer)
    const sql = Context.get(context, PgClient.PgClient)
    const [settings] = yield* sql<{ searchPath: string; workMem: string }>`
      SELECT current_setting('search_path') AS search_path, current_setting('work_mem') AS work_mem`
    const transformed = yield* sql`SELECT 1 AS first_column`

    // maxConnections: 9 concurrent statements run on 3 backends
    const pids = yield* Effect.forEach(
      Array.from({ length: 9 }),
      () => Effect.map(sql<{ pid: number }>`SELECT pg_backend_pid() AS pid, pg_sleep(0.2)`, (rows) => rows[0]!.pid),
      { concurrency: "unbounded" }
    )
    // minConnections: once idle past idleTimeout, one connection is kept
    yield* pollServer(url, "10 seconds", async (client) => {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
        [applicationName]
      )
      return rows[0]!.n === 1 ? undefined : `${rows[0]!.n} backends, not minConnections (1)`
    })
    // connectionTTL: the connection kept is replaced once it is older than 1 second
    const first = (yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)[0]!.pid
    const replaced = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.pipe(
      Effect.map((rows) => rows[0]!.pid !== first),
      Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (changed) => changed }),
      Effect.timeoutTo({ duration: "6 seconds", onSuccess: () => true, onTimeout: () => false })
    )
    return {
      config: comparable(sql.config),
      searchPath: settings!.searchPath,
      workMem: settings!.workMem,
      transformed,
      peakBackends: new Set(pids).size,
      replacedAfterTtl: replaced
    } satisfies Observed
  }).pipe(Effect.scoped)

describe("14.6 one PgClientConfig through PgClient.layer and PgPool.layer", () => {
  it.live(
    "14.6 sql.config, pool size, min, TTL, startup settings from options: the same under both layers",
    () =>
      Effect.gen(function*() {
        const seen: Array<Observed> = []
        for (const [, layerOf] of contenders) {
          seen.push(yield* observe(layerOf(config)))
          yield* eventuallyNoBackends(url, applicationName, { within: "5 seconds" })
        }
        const [theirs, ours] = seen as [Observed, Observed]
        assert.deepStrictEqual(ours, theirs)
        // and what they are
        assert.strictEqual(ours.searchPath, "dropin_schema,public")
        assert.strictEqual(ours.workMem, "8MB")
        assert.deepStrictEqual(ours.transformed, [{ firstColumn: 1 }])
        assert.strictEqual(ours.peakBackends, 3)
        assert.isTrue(ours.replacedAfterTtl)
        assert.strictEqual(ours.config.url, `Redacted(${Redacted.value(config.url!)})`)
        assert.strictEqual(ours.config.host, parsed.hostname)
        assert.strictEqual(ours.config.port, Number(parsed.port))
        assert.strictEqual(ours.config.username, decodeURIComponent(parsed.username))
        assert.strictEqual(ours.config.password, `Redacted(${decodeURIComponent(parsed.password)})`)
        assert.strictEqual(ours.config.maxConnections, 3)
      }),
    { timeout: 60_000 }
  )

  it.live("14.6 a wrong password fails both layers at build, ours with a classified PgConnectError", () =>
    Effect.gen(function*() {
      const bad = new URL(url)
      bad.password = "wrong-password"
      const failures: Array<string> = []
      for (const [, layerOf] of contenders) {
        const exit = yield* Layer.build(layerOf({ ...config, url: Redacted.make(bad.toString()) })).pipe(
          Effect.scoped,
          Effect.exit
        )
        assert.isTrue(Exit.isFailure(exit))
        const error = exit._tag === "Failure" ? exit.cause : undefined
        failures.push(error === undefined ? "success" : classify((error as { error?: unknown }).error))
      }
      assert.deepStrictEqual(failures, ["SqlError", "PgConnectError(Authentication)"])
      yield* eventuallyNoBackends(url, applicationName, { within: "2 seconds" })
    }))

  it.live("14.1 stream: both layers connect through the given socket factory", () =>
    Effect.gen(function*() {
      const target = { host: parsed.hostname, port: Number(parsed.port) }
      let made = 0
      // host and port lead nowhere: only the factory's socket reaches the server
      const stream = () => {
        made++
        const socket = new Net.Socket()
        const connect = socket.connect.bind(socket) as (port: number, host: string) => Net.Socket
        socket.connect = (() => connect(target.port, target.host)) as unknown as typeof socket.connect
        return socket
      }
      const through: PgClient.PgClientConfig = {
        host: "nowhere.invalid",
        port: 1,
        database: decodeURIComponent(parsed.pathname.slice(1)),
        username: decodeURIComponent(parsed.username),
        password: Redacted.make(decodeURIComponent(parsed.password)),
        applicationName,
        stream
      }
      for (const [name, layerOf] of contenders) {
        const before = made
        const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1 AS one`).pipe(
          Effect.provide(layerOf(through))
        )
        assert.deepStrictEqual(rows, [{ one: 1 }], name)
        assert.isAbove(made, before, name)
      }
      const pg = yield* PgPool.make({ ...through, lazy: true }).pipe(Effect.provide(Reactivity.layer))
      assert.strictEqual(pg.sql.config.stream, stream)
    }).pipe(Effect.scoped))

  it.live("14.5 listen: an empty payload reaches our subscriber; PgClient.layer drops it", () =>
    Effect.gen(function*() {
      const firsts: Array<string> = []
      for (const [, layerOf] of contenders) {
        const first = yield* Effect.gen(function*() {
          const sql = yield* PgClient.PgClient
          const head = yield* Effect.fork(Stream.runHead(sql.listen("empty_payloads")))
          // "" then "marker", until the subscriber has something: its first payload tells
          yield* sql`SELECT pg_notify('empty_payloads', ''), pg_notify('empty_payloads', 'marker')`.pipe(
            Effect.repeat({ schedule: Schedule.spaced("25 millis"), until: () => head.unsafePoll() !== null }),
            Effect.timeout("5 seconds")
          )
          return Option.getOrElse(yield* Fiber.join(head), () => "none")
        }).pipe(Effect.provide(layerOf({ url: Redacted.make(url), applicationName })))
        firsts.push(first)
      }
      assert.deepStrictEqual(firsts, ["marker", ""])
    }))

  it.live("14.1 layerConfig takes PgClient's Config.Wrap as it is, and a plain-string url (15.3)", () =>
    Effect.gen(function*() {
      const wrapped: Config.Config.Wrap<PgClient.PgClientConfig> = {
        url: Config.redacted("DATABASE_URL"),
        applicationName: Config.succeed(applicationName),
        maxConnections: Config.integer("MAX")
      }
      const provider = ConfigProvider.fromMap(new Map([["DATABASE_URL", url], ["MAX", "2"]]))
      const max = yield* Effect.flatMap(PgPool.PgPool, (pg) => Effect.map(pg.stats, (s) => s.max)).pipe(
        Effect.provide(PgPool.layerConfig(wrapped).pipe(Layer.provide(Layer.setConfigProvider(provider))))
      )
      assert.strictEqual(max, 2)
      const plain = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 2 AS two`).pipe(
        Effect.provide(PgPool.layer({ url, applicationName }))
      )
      assert.deepStrictEqual(plain, [{ two: 2 }])
      assert.deepStrictEqual(yield* Effect.promise(() => backendsOf(url, applicationName)), [])
    }))
})
