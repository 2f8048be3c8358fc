import { assert, describe, it } from "@effect/vitest"
import type { PgConnection } from "@scoped-pool/pg"
import { PgError } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { activeCount } from "../support/backends.js"
import * as PgServer from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"
import { connectValid, optionsFromUrl, passwordOf } from "./options.js"

const { applicationName, url } = testDb(import.meta.url)

// A throwaway server with TLS on, from a self-signed certificate made for this test, naming
// db.example.test only (not 127.0.0.1): verify-full to 127.0.0.1 must fail on the host check.
let certificate = ""
const tlsServer = Effect.acquireRelease(
  Effect.promise(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "scoped-pool-tls-"))
    try {
      execFileSync("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=db.example.test",
        "-addext",
        "subjectAltName=DNS:db.example.test",
        "-keyout",
        Path.join(dir, "key"),
        "-out",
        Path.join(dir, "crt")
      ], { stdio: "ignore" })
      certificate = Fs.readFileSync(Path.join(dir, "crt"), "utf8")
      return PgServer.start({
        maxConnections: 20,
        settings: { ssl: "on", ssl_cert_file: "server.crt", ssl_key_file: "server.key" },
        files: {
          "server.crt": Fs.readFileSync(Path.join(dir, "crt"), "utf8"),
          "server.key": Fs.readFileSync(Path.join(dir, "key"), "utf8")
        }
      })
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }),
  (server) => Effect.promise(() => server.stop())
)

describe("8. connect failures: TLS", () => {
  it.live("ssl required by the client, refused by the server: PgConnectError reason Tls, with what to do", () =>
    Effect.gen(function*() {
      // the shared test server has no TLS: it answers the SSLRequest with "N"
      const error = yield* Effect.flip(connectValid(optionsFromUrl(url, applicationName, { ssl: true })))
      assert.instanceOf(error, PgError.PgConnectError)
      assert.strictEqual(error.reason, "Tls")
      assert.include(error.message, "check the ssl options")
      assert.notInclude(error.message, passwordOf(url))
      assert.notInclude(JSON.stringify(error), passwordOf(url))
    }).pipe(Effect.scoped))
})

describe("2. the cancel is TLS-aware", () => {
  it.live("over TLS, a timed-out statement is cancelled through a TLS side socket; the connection stays usable", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer
      const conn = yield* connectValid(
        optionsFromUrl(server.url, applicationName, { ssl: { rejectUnauthorized: false } })
      )
      const [tls] = (yield* conn.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [])).rows
      assert.isTrue(tls.ssl)
      const outcome = yield* Effect.either(conn.query("SELECT pg_sleep(10)", []).pipe(Effect.timeout("200 millis")))
      assert.isTrue(Either.isLeft(outcome))
      assert.strictEqual(
        yield* Effect.promise(() => activeCount(server.url, applicationName, "SELECT pg_sleep(10)")),
        0
      )
      assert.strictEqual(conn.transactionStatus, "idle")
      assert.deepStrictEqual((yield* conn.query("SELECT 1 AS one", [])).rows, [{ one: 1 }])
      // With ssl set, the cancel always goes SSLRequest → TLS → CancelRequest: had that failed,
      // the cancel would be unconfirmed and the connection destroyed, not usable as above.
      assert.deepStrictEqual(server.log.filter((line) => /SSL error|could not accept SSL/i.test(line)), [])
    }).pipe(Effect.scoped))
})

describe("sslmode, as libpq", () => {
  const sslOf = (conn: PgConnection.PgConnection) =>
    Effect.map(conn.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", []), (r) => r.rows[0].ssl)

  it.live("prefer: TLS when the server has it, plain when it has not", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer
      const secure = yield* connectValid(optionsFromUrl(server.url, applicationName, { sslmode: "prefer" }))
      assert.isTrue(yield* sslOf(secure))
      const plain = yield* connectValid(optionsFromUrl(url, applicationName, { sslmode: "prefer" }))
      assert.isFalse(yield* sslOf(plain))
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("require: TLS, certificate unchecked; disable and allow: plain first", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer
      assert.isTrue(
        yield* sslOf(yield* connectValid(optionsFromUrl(server.url, applicationName, { sslmode: "require" })))
      )
      assert.isFalse(
        yield* sslOf(yield* connectValid(optionsFromUrl(server.url, applicationName, { sslmode: "allow" })))
      )
      assert.isFalse(
        yield* sslOf(yield* connectValid(optionsFromUrl(server.url, applicationName, { sslmode: "disable" })))
      )
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live(
    "verify-ca checks the chain; verify-full also checks that the certificate names the host",
    () =>
      Effect.gen(function*() {
        const server = yield* tlsServer
        const options = (sslmode: "verify-ca" | "verify-full", tls: Record<string, string>) =>
          optionsFromUrl(server.url, applicationName, { sslmode, ssl: tls })
        // no trusted CA: both fail on the chain
        for (const mode of ["verify-ca", "verify-full"] as const) {
          const error = yield* Effect.flip(connectValid(options(mode, {})))
          assert.strictEqual(error.reason, "Tls", error.message)
        }
        // the certificate trusted: verify-ca passes, verify-full fails (it names db.example.test, not 127.0.0.1)
        assert.isTrue(yield* sslOf(yield* connectValid(options("verify-ca", { ca: certificate }))))
        const mismatch = yield* Effect.flip(connectValid(options("verify-full", { ca: certificate })))
        assert.strictEqual(mismatch.reason, "Tls", mismatch.message)
        // … and passes when the name checked is the certificate's
        const named = yield* connectValid(
          options("verify-full", { ca: certificate, servername: "db.example.test" })
        )
        assert.isTrue(yield* sslOf(named))
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
