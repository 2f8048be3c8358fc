/**
 * Authentication against a throwaway server whose pg_hba.conf asks for each method: trust,
 * cleartext password, MD5 and SCRAM-SHA-256 (issue 12 line 2). A wrong password fails with
 * `PgConnectError` reason Authentication and no trace of the password; a server asking for a
 * password when none was given fails the same way.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { connectValid } from "../pg/options.js"
import { withClient } from "../support/backends.js"
import * as PgServer from "../support/PgServer.js"

const password = "auth-test-Pw-7Q"

const server = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = await PgServer.start({
      maxConnections: 20,
      hba: [
        "host all trust_user 127.0.0.1/32 trust",
        "host all clear_user 127.0.0.1/32 password",
        "host all md5_user 127.0.0.1/32 md5",
        "host all scram_user 127.0.0.1/32 scram-sha-256"
      ]
    })
    await withClient(server.url, async (client) => {
      await client.query("SET password_encryption = 'md5'")
      await client.query(`CREATE USER md5_user PASSWORD '${password}'`)
      await client.query("SET password_encryption = 'scram-sha-256'")
      await client.query(`CREATE USER clear_user PASSWORD '${password}'`)
      await client.query(`CREATE USER scram_user PASSWORD '${password}'`)
      await client.query("CREATE USER trust_user")
    })
    return server
  }),
  (server) => Effect.promise(() => server.stop())
)

const connectAs = (server: PgServer.PgServer, user: string, pw: string | undefined) =>
  connectValid({
    host: server.host,
    port: server.port,
    database: "postgres",
    user,
    ...(pw === undefined ? {} : { password: Redacted.make(pw) }),
    applicationName: "sp-wire-auth"
  })

const whoAmI = (conn: PgConnection.PgConnection) =>
  Effect.map(conn.query("SELECT current_user AS u", []), (r) => r.rows[0].u as string)

describe("wire authentication", () => {
  it.scopedLive(
    "trust, cleartext, MD5 and SCRAM-SHA-256 each log in; wrong passwords fail typed, with no secret",
    () =>
      Effect.gen(function*() {
        const s = yield* server
        // the hba file is really in force: the stored MD5 hash is what md5 needs
        const stored = yield* Effect.promise(() =>
          withClient(s.url, async (client) =>
            (await client.query<{ rolname: string; kind: string }>(
              "SELECT rolname, left(rolpassword, 5) AS kind FROM pg_authid WHERE rolname LIKE '%_user' ORDER BY 1"
            )).rows)
        )
        const kinds = Object.fromEntries(stored.map((r) => [r.rolname, r.kind]))
        assert.strictEqual(kinds.md5_user?.slice(0, 3), "md5")
        assert.strictEqual(kinds.scram_user, "SCRAM")
        for (
          const [user, pw] of [["trust_user", undefined], ["clear_user", password], ["md5_user", password], [
            "scram_user",
            password
          ]] as const
        ) {
          const name = yield* Effect.scoped(Effect.flatMap(connectAs(s, user, pw), whoAmI))
          assert.strictEqual(name, user)
        }
        for (const user of ["clear_user", "md5_user", "scram_user"]) {
          const wrong = "not-the-Pw-3Z"
          const error = yield* Effect.flip(Effect.scoped(connectAs(s, user, wrong)))
          assert.strictEqual(error._tag, "PgConnectError")
          assert.strictEqual(error.reason, "Authentication", `${user}: ${error.message}`)
          for (const text of [error.message, JSON.stringify(error), String(error)]) {
            assert.notInclude(text, wrong)
            assert.notInclude(text, password)
          }
          const none = yield* Effect.flip(Effect.scoped(connectAs(s, user, undefined)))
          assert.strictEqual(none.reason, "Authentication", `${user} without password: ${none.message}`)
          assert.include(none.message, "password")
        }
      }),
    { timeout: 60_000 }
  )
})
