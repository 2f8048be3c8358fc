import { assert, describe, it } from "@effect/vitest"
import { PgConnection, PgError } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { activeCount } from "../support/backends.js"
import * as PgServer from "../support/PgServer.js"
import { testDb } from "../support/TestDb.js"
import { optionsFromUrl, passwordOf } from "./options.js"

const { applicationName, url } = testDb(import.meta.url)

// A throwaway server with TLS on, from a self-signed certificate made for this test.
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
        "/CN=127.0.0.1",
        "-keyout",
        Path.join(dir, "key"),
        "-out",
        Path.join(dir, "crt")
      ], { stdio: "ignore" })
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
      const error = yield* Effect.flip(PgConnection.make(optionsFromUrl(url, applicationName, { ssl: true })))
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
      const conn = yield* PgConnection.make(
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
