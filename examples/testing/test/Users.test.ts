import { assert, layer } from "@effect/vitest"
import { PgTest } from "@scoped-pool/testing"
import { Effect, Either } from "effect"
import * as Users from "../src/Users.js"

// A fresh database for this file, copied from the migrated template; PgPool, SqlClient and
// PgClient on it. At the end of the file: no connection of the file may be left open.
layer(PgTest.layer())("Users", (it) => {
  // Each test runs in a transaction that is rolled back: no test sees another's rows.
  it.effect("creates a user", () =>
    PgTest.rollback(Effect.gen(function*() {
      const ada = yield* Users.create("Ada")
      assert.strictEqual(ada.name, "Ada")
      assert.deepStrictEqual(yield* Users.all, [ada])
    })))

  it.effect("names are unique", () =>
    PgTest.rollback(Effect.gen(function*() {
      yield* Users.create("Grace")
      const again = yield* Effect.either(Users.create("Grace"))
      assert.isTrue(Either.isLeft(again))
    })))

  it.effect("starts empty: the other tests' rows were rolled back", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Users.all, [])
    }))
})
