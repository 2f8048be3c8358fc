import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

describe("smoke", () => {
  layer(PgPool.layer({ url: Redacted.make(url), applicationName, max: 4 }), { timeout: "30 seconds" })((it) => {
    it.effect("select", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ n: number }>`SELECT ${41}::int + 1 AS n`
        assert.strictEqual(rows[0]!.n, 42)
        const tx = yield* sql.withTransaction(sql`SELECT txid_current() AS id`)
        assert.isDefined(tx[0])
      }))
  })
})
