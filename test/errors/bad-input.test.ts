/**
 * S10 bad input (issue 7): an invalid URL, a wrong password, an unknown database, an
 * unreachable host or port, max < min, negative / zero / NaN durations and non-numeric
 * environment values each fail with a typed error whose message says what is wrong, within
 * the connect timeout; no password shows in any message, serialisation or log line; nothing
 * is left open.
 *
 * Unreachable is transient for the pool (the server may be starting): callers keep waiting up
 * to `acquireTimeout` while creation retries, then get a `PoolTimeout` whose cause is the
 * `PgConnectError`. Authentication and UnknownDatabase fail waiters at once (failFast).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import { PoolConfigError } from "@scoped-pool/core/PoolError"
import { PgPool, PgPoolLive } from "@scoped-pool/pg"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import { PgConnectError } from "@scoped-pool/pg/PgError"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Net from "node:net"
import { eventuallyNoBackends } from "../support/backends.js"
import { classify, failure, withLogs } from "../support/faults.js"
import type { captureLogs } from "../support/logs.js"
import { freePort } from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)
const parsed = new URL(url)
const realPassword = decodeURIComponent(parsed.password)
const secret = "Sup3r-Secret-Pw"
const secrets = [realPassword, secret]

/** `url` with another password, database, host or port. */
const urlWith = (changes: { password?: string; database?: string; host?: string; port?: number }) => {
  const u = new URL(url)
  if (changes.password !== undefined) u.password = encodeURIComponent(changes.password)
  if (changes.database !== undefined) u.pathname = `/${changes.database}`
  if (changes.host !== undefined) u.hostname = changes.host
  if (changes.port !== undefined) u.port = String(changes.port)
  return u.toString()
}

/** Every text a user or a log could show of `error`: none may contain a password or a URL with credentials. */
const assertNoSecret = (error: unknown, logs?: ReturnType<typeof captureLogs>) => {
  const e = error as { readonly message?: unknown; readonly cause?: unknown }
  const texts = [
    String(e.message),
    String(error),
    JSON.stringify(error),
    String(e.cause),
    JSON.stringify(e.cause ?? null),
    ...(logs?.lines ?? []).map((l) => `${l.message} ${JSON.stringify(l.annotations)}`)
  ]
  for (const shown of texts) {
    // the advice's own template "postgres://user:password@host…" is no credential
    const text = shown.replaceAll("postgres://user:password@host", "postgres://<template>")
    for (const s of secrets) assert.notInclude(text, s, `a password leaks in: ${text}`)
    assert.notMatch(text, /postgres(ql)?:\/\/[^\s/@*]+:[^\s/@*]+@/, `a URL with credentials leaks in: ${text}`)
  }
}

/** Opens a pool with `options` (in a scope of its own) and returns how building it failed. */
const buildFailure = (options: PgPool.Options) =>
  PgPool.make({ applicationName, ...options }).pipe(Effect.scoped, Effect.provide(Reactivity.layer), failure)

/**
 * Opens a pool with `options` without connecting (`lazy`), runs one statement, and returns its
 * error and how long it took: the pool's own behaviour, after the build-time check.
 */
const statementFailure = (options: PgPool.Options) =>
  Effect.gen(function*() {
    const pg = yield* PgPool.make({ applicationName, lazy: true, ...options })
    const started = Date.now()
    const error = yield* failure(pg.sql`SELECT 1`)
    return { error, elapsed: Date.now() - started }
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))

const assertConfigError = (error: unknown, field: string, expected: string) => {
  assert.instanceOf(error, PoolConfigError, classify(error))
  const e = error as PoolConfigError
  assert.strictEqual(e.field, field)
  assert.include(e.message, `${field} must be ${expected}`)
  assertNoSecret(e)
}

describe("S10 bad input: invalid options fail with PoolConfigError before anything opens", () => {
  const cases: ReadonlyArray<readonly [string, PgPool.Options, string, string]> = [
    ["not a URL", { url: Redacted.make("not a url") }, "url", "a postgres:// URL or a key=value connection string"],
    ["another scheme", { url: Redacted.make(`mysql://app:${secret}@db:3306/app`) }, "url", "a postgres:// or"],
    [
      "a port that is not a number",
      {
        url: Redacted.make(`postgres://app:${secret}@db:notaport/app`)
      },
      "url",
      "a URL like"
    ],
    [
      "a password with a raw '@' in a malformed URL",
      {
        url: Redacted.make(`postgres://app:p@${secret}@db:notaport/app`)
      },
      "url",
      "a URL like"
    ],
    ["max < min", { max: 2, min: 5 }, "max", ">= min (5)"],
    ["max 0", { max: 0 }, "max", "an integer >= 1"],
    ["max NaN", { max: Number.NaN }, "max", "an integer >= 1"],
    ["max 1.5", { max: 1.5 }, "max", "an integer >= 1"],
    ["min -1", { min: -1 }, "min", "an integer >= 0"],
    ["port 0", { url: undefined, port: 0 }, "port", "an integer in [1, 65535]"],
    ["port 70000", { url: undefined, port: 70_000 }, "port", "an integer in [1, 65535]"]
  ]
  for (const [name, options, field, expected] of cases) {
    it.live(`${name}: PoolConfigError on ${field}`, () =>
      Effect.gen(function*() {
        // "before anything opens", as a fact: every socket the pool would open comes from this factory
        let opened = 0
        const stream = () => {
          opened++
          return new Net.Socket()
        }
        const started = Date.now()
        const error = yield* buildFailure({ url: Redacted.make(url), stream, ...options })
        assertConfigError(error, field, expected)
        assert.strictEqual(opened, 0)
        // generous: two test files share two cores
        assert.isBelow(Date.now() - started, 1000)
      }))
  }

  const durations: ReadonlyArray<readonly [keyof PgPool.Options, Duration.DurationInput, string]> = [
    ["acquireTimeout", -1, "a finite duration > 0"],
    ["acquireTimeout", 0, "a finite duration > 0"],
    ["acquireTimeout", Number.NaN, "a finite duration > 0"],
    ["acquireTimeout", "-5 seconds", "a finite duration > 0"],
    ["acquireTimeout", Number.POSITIVE_INFINITY, "a finite duration > 0"],
    ["idleTimeout", 0, "a finite duration > 0"],
    ["maxLifetime", "-1 seconds", "a finite duration > 0"],
    ["closeTimeout", -1, "a finite duration >= 0"],
    ["checkAfterIdle", Number.NaN, "a finite duration >= 0"],
    ["reconnectTimeout", 0, "a finite duration > 0"],
    ["leakThreshold", -10, "a finite duration > 0"],
    ["queryTimeout", 0, "a finite duration > 0"],
    ["queryTimeout", "NaN millis" as Duration.DurationInput, "a finite duration > 0"],
    ["connectTimeout", -1, "a finite duration > 0"],
    ["connectTimeout", 0, "a finite duration > 0"],
    ["cancelTimeout", Number.NaN, "a finite duration > 0"],
    ["lockTimeout", "-2 seconds", "a finite duration > 0"],
    ["idleInTransactionTimeout", 0, "a finite duration > 0"]
  ]
  for (const [field, value, expected] of durations) {
    it.live(`${field} ${String(value)}: PoolConfigError on ${field}`, () =>
      Effect.gen(function*() {
        const error = yield* buildFailure({ url: Redacted.make(url), [field]: value })
        assertConfigError(error, field, expected)
      }))
  }
})

describe("S10 bad input: the server refuses, or is not there", () => {
  it.live("wrong password: SqlError caused by PgConnectError Authentication at once, no password anywhere", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const { elapsed, error } = yield* statementFailure({
          url: Redacted.make(urlWith({ password: secret })),
          connectTimeout: "2 seconds",
          acquireTimeout: "10 seconds"
        })
        assert.strictEqual(classify(error), "SqlError > PgConnectError(Authentication)")
        const cause = (error as SqlError).cause as PgConnectError
        assert.include(cause.message, "check the user name and password")
        assert.include(cause.message, `user "${decodeURIComponent(parsed.username)}"`)
        assert.isBelow(elapsed, 2000, `failed after ${elapsed} ms`)
        assertNoSecret(error, logs)
        assertNoSecret(cause, logs)
        yield* eventuallyNoBackends(url, applicationName, { within: "1 second" })
      })
    ))

  it.live("the password given as an option, wrong: same error, no password anywhere", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const { elapsed, error } = yield* statementFailure({
          host: parsed.hostname,
          port: Number(parsed.port),
          username: decodeURIComponent(parsed.username),
          password: Redacted.make(secret),
          connectTimeout: "2 seconds"
        })
        assert.strictEqual(classify(error), "SqlError > PgConnectError(Authentication)")
        assert.isBelow(elapsed, 2000, `failed after ${elapsed} ms`)
        assertNoSecret(error, logs)
      })
    ))

  it.live("unknown database: SqlError caused by PgConnectError UnknownDatabase at once", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const { elapsed, error } = yield* statementFailure({
          url: Redacted.make(urlWith({ database: "no_such_database" })),
          connectTimeout: "2 seconds",
          acquireTimeout: "10 seconds"
        })
        assert.strictEqual(classify(error), "SqlError > PgConnectError(UnknownDatabase)")
        const cause = (error as SqlError).cause as PgConnectError
        assert.strictEqual(cause.database, "no_such_database")
        assert.include(cause.message, `database "no_such_database"`)
        assert.include(cause.message, "create the database or fix the database name")
        assert.isBelow(elapsed, 2000, `failed after ${elapsed} ms`)
        assertNoSecret(error, logs)
      })
    ))

  it.live("unreachable port: PgConnectError Unreachable at once, the pool having no connection", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const port = yield* Effect.promise(() => freePort())
        const { elapsed, error } = yield* statementFailure({
          url: Redacted.make(urlWith({ port })),
          connectTimeout: "2 seconds",
          acquireTimeout: "30 seconds"
        })
        assert.strictEqual(classify(error), "SqlError > PgConnectError(Unreachable)")
        const cause = (error as SqlError).cause as PgConnectError
        assert.strictEqual(cause.port, port)
        assert.include(error.message, "could not connect to PostgreSQL at")
        assert.include(error.message, "check that the server is running and that host and port are right")
        assert.isBelow(elapsed, 2000, `failed after ${elapsed} ms`)
        assertNoSecret(error, logs)
        assertNoSecret(cause, logs)
      })
    ))

  it.live("unknown host: PgConnectError Unreachable within connectTimeout", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const { elapsed, error } = yield* statementFailure({
          url: Redacted.make(urlWith({ host: "no-such-host.invalid" })),
          connectTimeout: "2 seconds",
          acquireTimeout: "30 seconds"
        })
        assert.strictEqual(classify(error), "SqlError > PgConnectError(Unreachable)")
        assert.include(error.message, "no-such-host.invalid")
        assert.isBelow(elapsed, 2000, `failed after ${elapsed} ms`)
        assertNoSecret(error, logs)
      })
    ))

  it.live("a single connection to an unreachable port or host fails with PgConnectError Unreachable at once", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      for (const target of [{ host: "127.0.0.1", port }, { host: "no-such-host.invalid", port: 5432 }]) {
        const started = Date.now()
        const error = yield* failure(
          PgConnection.make({
            ...target,
            database: "postgres",
            user: "postgres",
            password: Redacted.make(secret),
            connectTimeout: "2 seconds"
          }).pipe(Effect.scoped)
        )
        assert.instanceOf(error, PgConnectError)
        assert.strictEqual(error.reason, "Unreachable")
        assert.include(error.message, `${target.host}:${target.port}`)
        assert.isBelow(Date.now() - started, 2000)
        assertNoSecret(error)
      }
    }))
})

describe("S10 bad input: environment values (PgPoolLive)", () => {
  /** Builds `PgPoolLive` with exactly these environment variables and returns how it failed. */
  const liveFailure = (env: Record<string, string>) =>
    Layer.build(
      PgPoolLive.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))
    ).pipe(Effect.scoped, failure)

  const base = { DATABASE_URL: urlWith({ password: secret }), PGAPPNAME: applicationName, PGPASSWORD: secret }

  for (const [name, value] of [["PGPOOL_MAX", "abc"], ["PGPORT", "x"], ["PGPOOL_ACQUIRE_TIMEOUT", "soon"]] as const) {
    it.live(`${name}=${value}: a ConfigError that names ${name}`, () =>
      Effect.gen(function*() {
        const started = Date.now()
        const error = yield* liveFailure({ ...base, [name]: value })
        assert.isTrue(ConfigError.isConfigError(error), classify(error))
        assert.include(String(error), name)
        assert.include(String(error), value)
        // generous: two test files share two cores; a ConfigError comes before any pool exists
        assert.isBelow(Date.now() - started, 1000)
        assertNoSecret(error)
      }))
  }

  it.live("PGPOOL_MAX=0 and PGPOOL_MIN > PGPOOL_MAX: PoolConfigError naming PGPOOL_MAX (15.6)", () =>
    Effect.gen(function*() {
      assertConfigError(yield* liveFailure({ ...base, PGPOOL_MAX: "0" }), "PGPOOL_MAX", "an integer >= 1")
      assertConfigError(yield* liveFailure({ ...base, PGPOOL_MIN: "5", PGPOOL_MAX: "2" }), "PGPOOL_MAX", ">= min (5)")
    }))

  it.live("a malformed DATABASE_URL: PoolConfigError on DATABASE_URL, the URL not shown", () =>
    Effect.gen(function*() {
      const error = yield* liveFailure({ DATABASE_URL: `postgres://app:${secret}@db:notaport/app` })
      assertConfigError(error, "DATABASE_URL", "a URL like")
      assert.include((error as PoolConfigError).message, `got "<redacted>"`)
    }))
})

describe("14.3 the layer fails at build when the server cannot be reached or refuses the login", () => {
  /** Builds `PgPool.layer(options)` and returns how the build failed and how long it took. */
  const layerFailure = (options: PgPool.Options) =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* failure(Layer.build(PgPool.layer({ applicationName, ...options })).pipe(Effect.scoped))
      return { error, elapsed: Date.now() - started }
    })

  it.live("14.3 a wrong password: PgConnectError(Authentication) at build, not at the first statement", () =>
    withLogs((logs) =>
      Effect.gen(function*() {
        const { elapsed, error } = yield* layerFailure({
          url: Redacted.make(urlWith({ password: secret })),
          connectTimeout: "2 seconds"
        })
        assert.strictEqual(classify(error), "PgConnectError(Authentication)")
        assert.include((error as PgConnectError).message, "check the user name and password")
        assert.isBelow(elapsed, 2000, `failed after ${elapsed} ms`)
        assertNoSecret(error, logs)
        yield* eventuallyNoBackends(url, applicationName, { within: "1 second" })
      })
    ))

  it.live("14.3 an unreachable port, an unknown database: PgConnectError Unreachable / UnknownDatabase at build", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const unreachable = yield* layerFailure({ url: Redacted.make(urlWith({ port })), connectTimeout: "2 seconds" })
      assert.strictEqual(classify(unreachable.error), "PgConnectError(Unreachable)")
      assert.isBelow(unreachable.elapsed, 2000)
      const unknown = yield* layerFailure({ url: Redacted.make(urlWith({ database: "no_such_database" })) })
      assert.strictEqual(classify(unknown.error), "PgConnectError(UnknownDatabase)")
    }))

  it.live("14.3 lazy: true builds without connecting; the first statement connects", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const down = yield* statementFailure({ url: Redacted.make(urlWith({ port })), connectTimeout: "2 seconds" })
      assert.strictEqual(classify(down.error), "SqlError > PgConnectError(Unreachable)")
      yield* Effect.gen(function*() {
        const pg = yield* PgPool.make({ url: Redacted.make(url), applicationName, lazy: true })
        assert.strictEqual((yield* pg.stats).size, 0, "nothing connected while building")
        assert.deepStrictEqual(yield* pg.sql`SELECT 1 AS one`, [{ one: 1 }])
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
    }))

  it.live("14.3 a healthy server: the build leaves its first connection idle in the pool, as PgClient does", () =>
    Effect.gen(function*() {
      const pg = yield* PgPool.make({ url: Redacted.make(url), applicationName })
      const stats = yield* pg.stats
      assert.deepStrictEqual([stats.size, stats.idle, stats.created], [1, 1, 1])
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)))

  it.live("15.6 PgPoolLive with DATABASE_URL unset: the connect error names the settings that were defaults", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const error = yield* failure(
        Layer.build(
          PgPoolLive.pipe(
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
              new Map([["PGPORT", String(port)], ["PGAPPNAME", applicationName], ["PGCONNECT_TIMEOUT", "2"]])
            )))
          )
        ).pipe(Effect.scoped)
      )
      assert.strictEqual(classify(error), "PgConnectError(Unreachable)")
      const message = (error as PgConnectError).message
      assert.include(message, `could not connect to PostgreSQL at localhost:${port}`)
      assert.include(
        message,
        "host localhost, user postgres and database postgres are defaults, as nothing set them " +
          "(set DATABASE_URL, or PGHOST, PGUSER and PGDATABASE)"
      )
    }))
})
