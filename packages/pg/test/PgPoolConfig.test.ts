import * as Reactivity from "@effect/experimental/Reactivity"
import type * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import type { PoolConfigError } from "@scoped-pool/core/PoolError"
import * as PoolOptions from "@scoped-pool/core/PoolOptions"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Net from "node:net"
import { PgConnectError } from "../src/PgError.js"
import * as PgPool from "../src/PgPool.js"
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

describe("14.1 every PgClientConfig field, with its meaning there", () => {
  const ttl = Duration.seconds(90)
  const transform = (s: string) => s.toUpperCase()
  const stream = () => new Net.Socket()
  const types = { getTypeParser: () => (value: string) => value }
  // Every field of @effect/sql-pg 0.53's PgClientConfig, typed as such: it must be a PgPool.Options.
  const clientConfig: PgClient.PgClientConfig = {
    url: Redacted.make(`postgres://app:${encodeURIComponent(secret)}@db.example:6543/shop`),
    host: "db.example",
    port: 6543,
    path: undefined,
    ssl: { rejectUnauthorized: false },
    database: "shop",
    username: "app",
    password: Redacted.make(secret),
    stream,
    idleTimeout: "30 seconds",
    connectTimeout: "3 seconds",
    maxConnections: 7,
    minConnections: 2,
    connectionTTL: ttl,
    applicationName: "web",
    spanAttributes: { service: "shop" },
    transformResultNames: transform,
    transformQueryNames: transform,
    transformJson: false,
    types
  }
  const options: PgPoolConfig.PgPoolOptions = clientConfig

  it.effect("14.1 maxConnections, minConnections, connectionTTL, stream, types and the rest reach the pool", () =>
    Effect.gen(function*() {
      const resolved = yield* PgPoolConfig.resolveConnection(options)
      const c = resolved.connection
      assert.deepStrictEqual(resolved.pool, { min: 2, max: 7, maxLifetime: ttl })
      assert.deepStrictEqual([c.host, c.port, c.database, c.user, c.applicationName], [
        "db.example",
        6543,
        "shop",
        "app",
        "web"
      ])
      assert.strictEqual(Redacted.value(c.password!), secret)
      assert.deepStrictEqual(c.ssl, { rejectUnauthorized: false })
      assert.strictEqual(Duration.toMillis(Duration.decode(c.connectTimeout!)), 3_000)
      assert.strictEqual(c.stream, stream)
      assert.strictEqual(c.types, types)
      assert.isFalse(resolved.lazy)
    }))

  it.effect("14.1 sql.config is what PgClient.layer puts there: the config as given, filled from the URL", () =>
    Effect.gen(function*() {
      const { clientConfig: config } = yield* PgPoolConfig.resolveConnection({
        url: `postgres://app:${encodeURIComponent(secret)}@db.example:6543/shop`,
        maxConnections: 3
      })
      assert.isTrue(Redacted.isRedacted(config.url))
      assert.strictEqual(
        Redacted.value(config.url!),
        `postgres://app:${encodeURIComponent(secret)}@db.example:6543/shop`
      )
      assert.strictEqual(Redacted.value(config.password!), secret)
      assert.deepStrictEqual(
        { ...config, url: undefined, password: undefined },
        {
          url: undefined,
          password: undefined,
          host: "db.example",
          port: 6543,
          database: "shop",
          username: "app",
          maxConnections: 3
        }
      )
      assert.notInclude(JSON.stringify(config), secret)
    }))

  it.effect("14.1 both spellings given and disagreeing: PoolConfigError naming both", () =>
    Effect.gen(function*() {
      const clash = (o: PgPoolConfig.PgPoolOptions) => Effect.flip(PgPoolConfig.resolveConnection(o))
      const max = yield* clash({ max: 5, maxConnections: 7 })
      assert.strictEqual(max.field, "max")
      assert.include(max.message, "maxConnections (7)")
      const min = yield* clash({ min: 1, minConnections: 2 })
      assert.include(min.message, "min must be the same as minConnections (2)")
      const ttl = yield* clash({ maxLifetime: "10 minutes", connectionTTL: "5 minutes" })
      assert.include(ttl.message, "maxLifetime must be the same as connectionTTL (5m)")
      const path = yield* clash({ host: "db", path: "/var/run/postgresql" })
      assert.include(path.message, "path must be the same place as host")
      const url = yield* clash({ url: Redacted.make(`postgres://app:${secret}@db/shop`), database: "other" })
      assert.include(url.message, "database must be the same as dbname in url (postgres://app:***@db/shop)")
      const password = yield* clash({ url: Redacted.make(`postgres://app:${secret}@db/shop`), password: "other-pw" })
      assert.include(password.message, "password must be the same as password in url")
      for (const e of [url, password]) {
        assert.notInclude(e.message, secret)
        assert.notInclude(e.message, "other-pw")
      }
      // agreeing spellings are fine
      const same = yield* PgPoolConfig.resolveConnection({ max: 4, maxConnections: 4, host: "db", path: "db" })
      assert.strictEqual(same.pool.max, 4)
    }))

  it.effect("14.1 path: a socket directory, or a socket file whose suffix gives the port", () =>
    Effect.gen(function*() {
      const dir = (yield* PgPoolConfig.resolveConnection({ path: "/var/run/postgresql" })).connection
      assert.deepStrictEqual([dir.host, dir.port], ["/var/run/postgresql", 5432])
      const file = (yield* PgPoolConfig.resolveConnection({ path: "/tmp/.s.PGSQL.6000" })).connection
      assert.deepStrictEqual([file.host, file.port], ["/tmp", 6000])
    }))

  it.effect("14.1 an invalid maxConnections or connectionTTL is named as written (also by the pool: max < min)", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        (yield* Effect.flip(PgPoolConfig.resolveConnection({ maxConnections: 0 }))).field,
        "maxConnections"
      )
      const ttl = yield* Effect.flip(PgPoolConfig.resolveConnection({ connectionTTL: -1 }))
      assert.strictEqual(ttl.field, "connectionTTL")
      assert.include(ttl.message, "\"5 seconds\"")
      const sizes = yield* Effect.flip(
        PgPool.make({ maxConnections: 2, minConnections: 5, lazy: true }).pipe(
          Effect.scoped,
          Effect.provide(Reactivity.layer)
        )
      )
      assert.strictEqual((sizes as PoolConfigError).field, "maxConnections")
    }))
})

describe("15.3 a plain string url", () => {
  it.effect("15.3 is accepted and wrapped in Redacted at once", () =>
    Effect.gen(function*() {
      const resolved = yield* PgPoolConfig.resolveConnection({
        url: `postgres://app:${secret}@db/shop`,
        password: secret
      })
      assert.strictEqual(Redacted.value(resolved.connection.password!), secret)
      assert.isTrue(Redacted.isRedacted(resolved.clientConfig.url))
      assert.notInclude(JSON.stringify(resolved), secret)
    }))
})

describe("15.6 messages say what was a default and show the accepted format", () => {
  it.effect("15.6 a duration variable that is not one shows the format", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(fromEnv({ PGPOOL_QUERY_TIMEOUT: "5" }))
      assert.include(String(error), "PGPOOL_QUERY_TIMEOUT")
      assert.include(String(error), "\"5 seconds\" or \"500 millis\"")
      assert.include(String(error), "received 5")
      const option = yield* Effect.flip(
        PgPoolConfig.resolveConnection({ queryTimeout: "soon" as Duration.DurationInput })
      )
      assert.include(option.message, "like \"5 seconds\" or \"500 millis\"")
    }))

  it.effect("15.6 with nothing set, the connect error says host, port, database and user are defaults, and how to set them", () =>
    Effect.gen(function*() {
      const resolved = yield* PgPoolConfig.resolveConnection(yield* fromEnv({}))
      assert.deepStrictEqual(resolved.defaulted.map((d) => d.field), ["host", "port", "user", "database"])
      const error = new PgConnectError({
        reason: "Unreachable",
        host: resolved.connection.host,
        port: resolved.connection.port!,
        database: resolved.connection.database,
        user: resolved.connection.user,
        defaults: resolved.defaulted
      })
      assert.include(
        error.message,
        "host localhost, port 5432, user postgres and database postgres are defaults, as nothing set them " +
          "(set DATABASE_URL, or PGHOST, PGPORT, PGUSER and PGDATABASE)"
      )
      const fromOptions = yield* PgPoolConfig.resolveConnection({ host: "db" })
      assert.deepStrictEqual(fromOptions.defaulted.map((d) => d.setWith), [["url", "port"], ["url", "username"], [
        "url",
        "database"
      ]])
    }))
})

describe("D11 the duplicate-pool warning uses the full connection identity", () => {
  it.effect("D11 the identity holds user, host, port and database", () =>
    Effect.gen(function*() {
      const primary = yield* PgPoolConfig.resolveConnection({
        url: "postgres://app@db:5432/main",
        applicationName: "api"
      })
      const replica = yield* PgPoolConfig.resolveConnection({
        url: "postgres://app@db:5432/replica",
        applicationName: "api"
      })
      assert.notStrictEqual(primary.identity, replica.identity)
      assert.strictEqual(primary.identity, "api app@db:5432/main")
    }))
})

describe("14.5 the defaults that differ from @effect/sql-pg 0.53 (see docs/migrating-from-effect-sql-pg.md)", () => {
  it.effect("14.5 queryTimeout 2 min with its statement_timeout, idle in transaction 10 min, application_name, user, idleTimeout 10 min, maxLifetime 30 min", () =>
    Effect.gen(function*() {
      const { connection: c, name, pool } = yield* PgPoolConfig.resolveConnection({})
      const millis = (d: Duration.DurationInput | undefined) => d === undefined ? undefined : Duration.toMillis(d)
      assert.deepStrictEqual(
        {
          queryTimeout: millis(c.queryTimeout),
          statementTimeout: millis(c.statementTimeout),
          idleInTransactionTimeout: millis(c.idleInTransactionTimeout),
          applicationName: name,
          user: c.user,
          idleTimeout: PoolOptions.defaults.idleTimeout,
          maxLifetime: PoolOptions.defaults.maxLifetime,
          max: pool.max ?? PoolOptions.defaults.max
        },
        {
          queryTimeout: 120_000,
          statementTimeout: 132_000,
          idleInTransactionTimeout: 600_000,
          applicationName: "scoped-pool",
          user: "postgres",
          idleTimeout: 600_000,
          maxLifetime: 1_800_000,
          max: 10
        }
      )
    }))
})
