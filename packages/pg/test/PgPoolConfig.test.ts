import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as PgPoolConfig from "../src/PgPoolConfig.js"

const secret = "s3cr3t-p@ss"

const fromEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(PgPoolConfig.fromEnv, ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("PgPoolConfig.resolveConnection", () => {
  it.effect("5. parses a URL; fields that agree with it are fine; the password stays Redacted", () =>
    Effect.gen(function*() {
      const resolved = yield* PgPoolConfig.resolveConnection({
        url: Redacted.make(
          `postgres://app:${encodeURIComponent(secret)}@db.example:6543/shop?sslmode=require&application_name=web`
        ),
        database: "shop"
      })
      const c = resolved.connection
      assert.strictEqual(c.host, "db.example")
      assert.strictEqual(c.port, 6543)
      assert.strictEqual(c.user, "app")
      assert.strictEqual(c.database, "shop")
      assert.strictEqual(c.applicationName, "web")
      assert.deepStrictEqual(c.ssl, { rejectUnauthorized: false })
      assert.isTrue(Redacted.isRedacted(c.password))
      assert.strictEqual(Redacted.value(c.password!), secret)
      assert.notInclude(JSON.stringify(resolved), secret)
      assert.notInclude(String(c.password), secret)
    }))

  it.effect("3. queryTimeout bounds statements on the client; statement_timeout is set a little above it", () =>
    Effect.gen(function*() {
      const resolved = yield* PgPoolConfig.resolveConnection({ queryTimeout: "10 seconds" })
      assert.strictEqual(Duration.toMillis(resolved.connection.queryTimeout!), 10_000)
      assert.strictEqual(Duration.toMillis(resolved.connection.statementTimeout!), 11_000)
      assert.strictEqual(PgPoolConfig.safetyNetFor(2_000), 3_000)
      assert.strictEqual(PgPoolConfig.safetyNetFor(120_000), 132_000)
      const defaults = yield* PgPoolConfig.resolveConnection({})
      assert.strictEqual(Duration.toMillis(defaults.connection.queryTimeout!), 120_000)
      assert.strictEqual(Duration.toMillis(defaults.connection.idleInTransactionTimeout!), 600_000)
    }))

  it.effect("8. a malformed URL or bad value fails with PoolConfigError naming the field, never showing the password", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(
        PgPoolConfig.resolveConnection({ url: Redacted.make(`postgres://u:${secret}@host:notaport/db`) })
      )
      assert.strictEqual(bad.field, "url")
      assert.notInclude(bad.message, secret)
      assert.notInclude(JSON.stringify(bad), secret)
      assert.include(bad.message, "check that the port is a number")
      assert.include(bad.message, `got "<redacted>"`)
      const mysql = yield* Effect.flip(PgPoolConfig.resolveConnection({ url: Redacted.make("mysql://u@h/db") }))
      assert.include(mysql.message, "a postgres:// or postgresql:// URL")
      assert.strictEqual((yield* Effect.flip(PgPoolConfig.resolveConnection({ port: 70000 }))).field, "port")
      assert.strictEqual(
        (yield* Effect.flip(PgPoolConfig.resolveConnection({ queryTimeout: -1 }))).field,
        "queryTimeout"
      )
      assert.strictEqual(
        (yield* Effect.flip(PgPoolConfig.resolveConnection({ connectTimeout: 0 }))).field,
        "connectTimeout"
      )
      assert.strictEqual(
        (yield* Effect.flip(PgPoolConfig.resolveConnection({ cancelTimeout: Number.NaN }))).field,
        "cancelTimeout"
      )
    }))
})

describe("PgPoolConfig.fromEnv", () => {
  it.effect("5. DATABASE_URL wins over the PG* variables, which fill what it does not say (as libpq); PGPOOL_* set the pool", () =>
    Effect.gen(function*() {
      const options = yield* fromEnv({
        DATABASE_URL: `postgres://app@db:5433/shop`,
        PGHOST: "ignored",
        PGPASSWORD: secret,
        PGPOOL_MAX: "7",
        PGPOOL_MIN: "2",
        PGPOOL_ACQUIRE_TIMEOUT: "5 seconds",
        PGPOOL_QUERY_TIMEOUT: "30 seconds"
      })
      assert.strictEqual(Redacted.value(options.url as Redacted.Redacted), `postgres://app@db:5433/shop`)
      const c = (yield* PgPoolConfig.resolveConnection(options)).connection
      assert.strictEqual(c.host, "db")
      assert.strictEqual(Redacted.value(c.password!), secret)
      assert.strictEqual(options.max, 7)
      assert.strictEqual(options.min, 2)
      assert.strictEqual(Duration.toMillis(Duration.decode(options.acquireTimeout!)), 5_000)
      assert.strictEqual(Duration.toMillis(Duration.decode(options.queryTimeout!)), 30_000)
    }))

  it.effect("5. the libpq variables: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGAPPNAME, PGSSLMODE, PGCONNECT_TIMEOUT", () =>
    Effect.gen(function*() {
      const options = yield* fromEnv({
        PGHOST: "db",
        PGPORT: "5434",
        PGDATABASE: "shop",
        PGUSER: "app",
        PGPASSWORD: secret,
        PGAPPNAME: "worker",
        PGSSLMODE: "verify-full",
        PGCONNECT_TIMEOUT: "3"
      })
      const c = (yield* PgPoolConfig.resolveConnection(options)).connection
      assert.deepStrictEqual(
        [c.host, c.port, c.database, c.user, c.applicationName, c.ssl],
        ["db", 5434, "shop", "app", "worker", true]
      )
      assert.strictEqual(Duration.toMillis(Duration.decode(c.connectTimeout!)), 3_000)
      assert.strictEqual(Redacted.value(c.password!), secret)
    }))

  it.effect("8. non-numeric values fail with a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      for (const [name, value] of [["PGPOOL_MAX", "abc"], ["PGPORT", "x"], ["PGPOOL_ACQUIRE_TIMEOUT", "soon"]]) {
        const error = yield* Effect.flip(fromEnv({ [name!]: value! }))
        assert.include(String(error), name!)
      }
      const sslmode = yield* Effect.flip(fromEnv({ PGSSLMODE: "sometimes" }))
      assert.include(String(sslmode), "PGSSLMODE")
    }))
})
