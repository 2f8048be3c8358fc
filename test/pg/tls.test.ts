import { assert, describe, it } from "@effect/vitest"
import { PgConnection, PgError } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import { testDb } from "../support/TestDb.js"
import { optionsFromUrl, passwordOf } from "./options.js"

const { applicationName, url } = testDb(import.meta.url)

describe("8. connect failures: TLS", () => {
  it.live("ssl required by the client, refused by the server: PgConnectError reason Tls, with what to do", () =>
    Effect.gen(function*() {
      // the test server has no TLS: it answers the SSLRequest with "N"
      const error = yield* Effect.flip(PgConnection.make(optionsFromUrl(url, applicationName, { ssl: true })))
      assert.instanceOf(error, PgError.PgConnectError)
      assert.strictEqual(error.reason, "Tls")
      assert.include(error.message, "check the ssl options")
      assert.notInclude(error.message, passwordOf(url))
      assert.notInclude(JSON.stringify(error), passwordOf(url))
    }).pipe(Effect.scoped))
})
