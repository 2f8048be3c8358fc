/**
 * Issue 14 line 2: connection strings follow libpq — URIs and `key=value` strings, percent-
 * encoding, a socket directory as the host, `sslmode` and the certificate files,
 * `application_name` and `fallback_application_name`, `options` with `-c name=value` server
 * settings, `connect_timeout`, `keepalives*` — and an unknown or unsupported parameter fails
 * with a `PoolConfigError` naming it, never ignored. No server is needed here.
 */
import { assert, describe, it } from "@effect/vitest"
import { PoolConfigError } from "@scoped-pool/core/PoolError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Tls from "node:tls"
import * as PgPoolConfig from "../src/PgPoolConfig.js"

const secret = "Sup3r/Secr@t:pw"

const resolve = (url: string, options: PgPoolConfig.PgPoolOptions = {}) =>
  PgPoolConfig.resolveConnection({ url: Redacted.make(url), ...options })

const failure = (url: string, options: PgPoolConfig.PgPoolOptions = {}) =>
  Effect.flip(resolve(url, options)).pipe(Effect.tap((error) =>
    Effect.sync(() => {
      assert.instanceOf(error, PoolConfigError)
      for (const text of [error.message, JSON.stringify(error), String(error)]) {
        assert.notInclude(text, secret)
        assert.notInclude(text, encodeURIComponent(secret))
      }
    })
  ))

const ms = (duration: Duration.DurationInput | undefined) =>
  duration === undefined ? undefined : Duration.toMillis(Duration.decode(duration))

const tempFile = (name: string, content: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "sp-conn-"))
  const file = Path.join(dir, name)
  Fs.writeFileSync(file, content)
  return file
}

describe("14.2 connection URIs follow libpq", () => {
  it.effect("14.2 user, password, host, port and database are percent-decoded", () =>
    Effect.gen(function*() {
      const { connection } = yield* resolve(
        `postgresql://a%40b:${encodeURIComponent(secret)}@db.example:6543/my%20db`
      )
      assert.strictEqual(connection.user, "a@b")
      assert.strictEqual(Redacted.value(connection.password!), secret)
      assert.strictEqual(connection.host, "db.example")
      assert.strictEqual(connection.port, 6543)
      assert.strictEqual(connection.database, "my db")
    }))

  it.effect("14.2 an IPv6 host, and a Unix socket directory as the host (encoded, or as host=)", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* resolve("postgres://[::1]:5433/db")).connection.host, "::1")
      assert.strictEqual(
        (yield* resolve("postgres://%2Fvar%2Frun%2Fpostgresql/db")).connection.host,
        "/var/run/postgresql"
      )
      const query = (yield* resolve("postgres:///app?host=/tmp/pg&port=5434")).connection
      assert.deepStrictEqual([query.host, query.port, query.database], ["/tmp/pg", 5434, "app"])
    }))

  it.effect("14.2 without a database the user's name is used, as libpq", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* resolve("postgres://app@db/")).connection.database, "app")
      assert.strictEqual((yield* resolve("postgres://db")).connection.database, "postgres")
    }))

  it.effect("14.2 sslmode: disable/allow/prefer start plain or fall back, require unverified, verify-ca the chain, verify-full all", () =>
    Effect.gen(function*() {
      const ssl = (mode: string) => Effect.map(resolve(`postgres://db/app?sslmode=${mode}`), (r) => r.connection.ssl)
      assert.isFalse(yield* ssl("disable"))
      assert.isFalse(yield* ssl("allow"))
      assert.isFalse(yield* ssl("prefer"))
      assert.deepStrictEqual(yield* ssl("require"), { rejectUnauthorized: false })
      const ca = (yield* ssl("verify-ca")) as Tls.ConnectionOptions
      assert.isUndefined(ca.rejectUnauthorized)
      assert.isUndefined(ca.checkServerIdentity!("db", {} as any))
      assert.isTrue(yield* ssl("verify-full"))
      assert.deepStrictEqual(yield* ssl("no-verify"), { rejectUnauthorized: false })
      // the mode itself reaches the connection: allow and prefer fall back (the wire client's part)
      const mode = (m: string) => Effect.map(resolve(`postgres://db/app?sslmode=${m}`), (r) => r.connection.sslmode)
      assert.deepStrictEqual(
        [yield* mode("allow"), yield* mode("prefer"), yield* mode("verify-full"), yield* mode("no-verify")],
        ["allow", "prefer", "verify-full", undefined]
      )
      const bad = yield* failure("postgres://db/app?sslmode=sometimes")
      assert.strictEqual(bad.field, "sslmode (in url)")
      assert.include(bad.message, "one of disable, allow, prefer, require, verify-ca, verify-full")
    }))

  it.effect("14.2 sslrootcert, sslcert and sslkey are read; require with a root certificate verifies the chain", () =>
    Effect.gen(function*() {
      const root = tempFile("root.crt", "ROOT")
      const cert = tempFile("client.crt", "CERT")
      const key = tempFile("client.key", "KEY")
      const full = (yield* resolve(
        `postgres://db/app?sslmode=verify-full&sslrootcert=${root}&sslcert=${cert}&sslkey=${key}`
      )).connection.ssl as Tls.ConnectionOptions
      assert.deepStrictEqual([String(full.ca), String(full.cert), String(full.key)], ["ROOT", "CERT", "KEY"])
      assert.isUndefined(full.checkServerIdentity)
      const require = (yield* resolve(`postgres://db/app?sslmode=require&sslrootcert=${root}`)).connection
        .ssl as Tls.ConnectionOptions
      assert.isUndefined(require.rejectUnauthorized)
      assert.isFunction(require.checkServerIdentity)
      assert.isTrue((yield* resolve("postgres://db/app?sslrootcert=system")).connection.ssl)

      const missing = yield* failure(`postgres://db/app?sslmode=require&sslrootcert=${root}.missing`)
      assert.strictEqual(missing.field, "sslrootcert (in url)")
      assert.include(missing.message, "ENOENT")
      const unencrypted = yield* failure(`postgres://db/app?sslrootcert=${root}`)
      assert.include(unencrypted.message, "used with sslmode=require, verify-ca or verify-full")
      const alone = yield* failure(`postgres://db/app?sslmode=require&sslcert=${cert}`)
      assert.strictEqual(alone.field, "sslcert (in url)")
      const weak = yield* failure("postgres://db/app?sslmode=require&sslrootcert=system")
      assert.include(weak.message, "verify-full with sslrootcert=system")
    }))

  it.effect("14.2 application_name, else fallback_application_name, else the default", () =>
    Effect.gen(function*() {
      const name = (url: string) => Effect.map(resolve(url), (r) => [r.name, r.connection.applicationName])
      assert.deepStrictEqual(yield* name("postgres://db/app?application_name=web&fallback_application_name=x"), [
        "web",
        "web"
      ])
      assert.deepStrictEqual(yield* name("postgres://db/app?fallback_application_name=worker"), ["worker", "worker"])
      assert.deepStrictEqual(yield* name("postgres://db/app"), ["scoped-pool", "scoped-pool"])
    }))

  it.effect("14.2 options: -c name=value settings become startup parameters; backslash escapes a space", () =>
    Effect.gen(function*() {
      const { connection } = yield* resolve(
        `postgres://db/app?options=${
          encodeURIComponent("-c search_path=app,public -cwork_mem=64MB --DateStyle=ISO,\\ MDY")
        }`
      )
      assert.deepStrictEqual(connection.startupParameters, {
        search_path: "app,public",
        work_mem: "64MB",
        datestyle: "ISO, MDY"
      })
      const plus = (yield* resolve("postgres://db/app?options=-c%20x.y=a+b")).connection.startupParameters
      assert.deepStrictEqual(plus, { "x.y": "a+b" }, "'+' is not a space in libpq")
      const bad = yield* failure("postgres://db/app?options=-d%205")
      assert.strictEqual(bad.field, "options (in url)")
      assert.include(bad.message, "-c name=value")
    }))

  it.effect("14.2 options: statement_timeout replaces the safety net; lock and idle timeouts must agree with ours", () =>
    Effect.gen(function*() {
      const own = (yield* resolve("postgres://db/app?options=-c%20statement_timeout%3D5s")).connection
      assert.isUndefined(own.statementTimeout)
      assert.strictEqual(own.startupParameters!.statement_timeout, "5s")
      const idle = (yield* resolve("postgres://db/app?options=-c%20idle_in_transaction_session_timeout%3D0"))
        .connection
      assert.isUndefined(idle.idleInTransactionTimeout, "the URL's own setting is sent instead of the default")
      const agree = yield* resolve("postgres://db/app?options=-c%20lock_timeout%3D2s", { lockTimeout: "2 seconds" })
      assert.isUndefined(agree.connection.lockTimeout)
      const clash = yield* failure("postgres://db/app?options=-c%20lock_timeout%3D2s", { lockTimeout: "3 seconds" })
      assert.strictEqual(clash.field, "lockTimeout")
      assert.include(clash.message, "-c lock_timeout=2s")
    }))

  it.effect("14.2 connect_timeout in seconds (at least 2, as libpq); 0 — wait forever — is refused", () =>
    Effect.gen(function*() {
      assert.strictEqual(ms((yield* resolve("postgres://db/app?connect_timeout=10")).connection.connectTimeout), 10_000)
      assert.strictEqual(ms((yield* resolve("postgres://db/app?connect_timeout=1")).connection.connectTimeout), 2_000)
      const zero = yield* failure("postgres://db/app?connect_timeout=0")
      assert.strictEqual(zero.field, "connect_timeout (in url)")
      assert.include(zero.message, "a whole number of seconds >= 1")
    }))

  it.effect("14.2 keepalives and keepalives_idle; keepalives_interval and _count cannot be set from Node", () =>
    Effect.gen(function*() {
      const { connection } = yield* resolve("postgres://db/app?keepalives=1&keepalives_idle=45")
      assert.isTrue(connection.keepAlive)
      assert.strictEqual(ms(connection.keepAliveInitialDelay), 45_000)
      assert.isFalse((yield* resolve("postgres://db/app?keepalives=0")).connection.keepAlive)
      for (const param of ["keepalives_interval", "keepalives_count"]) {
        const error = yield* failure(`postgres://db/app?${param}=5`)
        assert.strictEqual(error.field, `${param} (in url)`)
        assert.include(error.message, "Node.js cannot set")
      }
    }))

  it.effect("14.2 an unknown parameter fails naming it; so does an unsupported one, with what to do instead", () =>
    Effect.gen(function*() {
      const unknown = yield* failure("postgres://db/app?schema=public")
      assert.strictEqual(unknown.field, "schema (in url)")
      assert.include(unknown.message, "it is unknown")
      const hostaddr = yield* failure("postgres://db/app?hostaddr=10.0.0.1")
      assert.include(hostaddr.message, "hostaddr (in url) must be left out: it is not supported here")
      const encoding = yield* failure("postgres://db/app?client_encoding=LATIN1")
      assert.include(encoding.message, "UTF8 only")
      assert.strictEqual((yield* resolve("postgres://db/app?client_encoding=UTF8")).connection.host, "db")
      const several = yield* failure("postgres://h1:5432,h2:5432/app")
      assert.include(several.message, "several hosts")
      const twice = yield* failure("postgres://db/app?sslmode=require&sslmode=disable")
      assert.include(twice.message, "gives sslmode once")
    }))

  it.effect("14.2 the environment's DATABASE_URL is named in the error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        PgPoolConfig.resolveConnection({
          url: Redacted.make("postgres://db/app?pool=5"),
          sources: { url: "DATABASE_URL" }
        })
      )
      assert.strictEqual(error.field, "pool (in DATABASE_URL)")
    }))
})

describe("14.2 key=value connection strings follow libpq", () => {
  it.effect("14.2 keywords, spaces around '=', quoted values with \\' and \\\\", () =>
    Effect.gen(function*() {
      const quoted = secret.replace(/\\/g, "\\\\").replace(/'/g, "\\'")
      const { connection, name } = yield* resolve(
        `host=/var/run/postgresql port = 5433 dbname='my db' user=app password='${quoted}' application_name=jobs ` +
          `options='-c search_path=app'`
      )
      assert.deepStrictEqual([connection.host, connection.port, connection.database, connection.user, name], [
        "/var/run/postgresql",
        5433,
        "my db",
        "app",
        "jobs"
      ])
      assert.strictEqual(Redacted.value(connection.password!), secret)
      assert.deepStrictEqual(connection.startupParameters, { search_path: "app" })
      assert.strictEqual(
        Redacted.value((yield* resolve("user=app password=it\\'s\\ ok")).connection.password!),
        "it's ok"
      )
    }))

  it.effect("14.2 an unknown keyword fails naming it; a word without '=' fails without showing it", () =>
    Effect.gen(function*() {
      const unknown = yield* failure("host=db dbnme=app")
      assert.strictEqual(unknown.field, "dbnme (in url)")
      const word = yield* failure(`host=db ${secret}`)
      assert.include(word.message, "every word is key=value")
      const unterminated = yield* failure(`host=db password='${secret}`)
      assert.include(unterminated.message, "end with a quote")
    }))

  it.effect("14.2 words after an unquoted password are never named: they may be pieces of it", () =>
    Effect.gen(function*() {
      // the password "ab cd=ef" written unquoted: "cd=ef" reads as an unknown keyword
      const error = yield* failure("host=db password=ab cd=ef")
      assert.notInclude(error.message, "cd")
      assert.notInclude(error.message, "ef")
      assert.include(error.message, "quote it: password='…'")
    }))
})

describe("14.2 maskUrl", () => {
  it("14.2 rebuilds a parsed string with its secrets masked; shows only the scheme of one that does not parse", () => {
    assert.strictEqual(
      PgPoolConfig.maskUrl(`postgres://u:${encodeURIComponent(secret)}@h:5/d?sslmode=require&sslpassword=x`),
      "postgres://u:***@h:5/d?sslmode=require&sslpassword=***"
    )
    assert.strictEqual(PgPoolConfig.maskUrl(`host=h password='${secret}' user=u`), "host=h password=*** user=u")
    assert.strictEqual(PgPoolConfig.maskUrl(`postgres://u:${secret}@h/d`), "postgres://***")
    assert.strictEqual(PgPoolConfig.maskUrl(`nonsense ${secret}`), "***")
  })
})
