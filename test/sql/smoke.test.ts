import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { PgTest } from "@scoped-pool/testing"
import * as Effect from "effect/Effect"

// On the public test kit: a fresh database for this file, the pool on it, the leftover check
// at the end.
describe("smoke", () => {
  layer(PgTest.layer({ applicationName: "sp-smoke", max: 4 }), { timeout: "30 seconds" })((it) => {
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
