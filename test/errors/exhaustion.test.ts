/**
 * S9 exhaustion is explained (issue 7): with every connection leased, a caller that cannot get
 * one within `acquireTimeout` fails with a `PoolTimeout` that says how large the pool is, how
 * much of it is in use, how many wait, and — with `leakThreshold` set — where the holders took
 * their leases.
 */
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, layer } from "@effect/vitest"
import * as Pool from "@scoped-pool/core/Pool"
import { isPoolError, PoolTimeout } from "@scoped-pool/core/PoolError"
import { PgPool } from "@scoped-pool/pg"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { failure } from "../support/faults.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const max = 5
const Pool5 = PgPool.layer({
  url: Redacted.make(url),
  applicationName,
  max,
  min: max,
  acquireTimeout: "300 millis",
  leakThreshold: "1 minute"
})

/**
 * Leases every connection from `max` fibers, each inside its own span `holder-<n>`, and keeps
 * them until `release` completes; returns once all are held.
 */
const holdAll = Effect.gen(function*() {
  const pg = yield* PgPool.PgPool
  yield* Pool.waitReady(pg.pool, "10 seconds")
  const release = yield* Deferred.make<void>()
  const held = yield* Effect.forEach(Array.from({ length: max }), () => Deferred.make<void>())
  const holders = yield* Effect.forEach(held, (leased, i) =>
    Effect.fork(
      Effect.gen(function*() {
        yield* pg.pool.get
        yield* Deferred.succeed(leased, undefined)
        yield* Deferred.await(release)
      }).pipe(Effect.scoped, Effect.withSpan(`holder-${i + 1}`))
    ))
  yield* Effect.forEach(held, Deferred.await)
  return {
    release: Effect.zipRight(Deferred.succeed(release, undefined), Effect.forEach(holders, Fiber.join))
  }
})

describe("S9 exhaustion is explained", () => {
  layer(Pool5, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.effect("get fails with PoolTimeout carrying size, inUse, waiting and the holders' acquisition sites", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const { release } = yield* holdAll
        const started = Date.now()
        const error = yield* failure(Effect.scoped(pg.pool.get))
        const elapsed = Date.now() - started

        assert.instanceOf(error, PoolTimeout)
        const timeout = error as PoolTimeout
        assert.isTrue(isPoolError(timeout))
        assert.strictEqual(timeout.pool, applicationName)
        assert.deepStrictEqual(
          [timeout.size, timeout.max, timeout.inUse, timeout.idle, timeout.waiting],
          [5, 5, 5, 0, 0]
        )
        assert.isAtLeast(timeout.elapsedMillis, 300)
        assert.isBelow(elapsed, 300 + 500, `failed after ${elapsed} ms`)
        assert.isUndefined(timeout.cause, "creation does not fail: no cause")
        const message = timeout.message
        assert.include(message, `pool "${applicationName}": no resource after`)
        assert.include(message, "(size 5/5, in use 5, idle 0, waiting 0)")
        assert.include(message, "raise max or acquireTimeout")
        assert.include(message, "held by:")
        // every holder, with where it acquired its lease
        assert.strictEqual(timeout.holders.length, 5)
        for (let i = 1; i <= max; i++) assert.include(message, `at span holder-${i}`, message)
        for (const holder of timeout.holders) {
          assert.match(holder.fiber, /^#\d+$/)
          assert.isAtLeast(holder.heldMillis, 300)
          assert.match(holder.site ?? "", /^span holder-\d$/)
        }
        yield* release
        assert.strictEqual((yield* pg.stats).inUse, 0)
      }))

    it.effect("with two callers waiting, the first to time out counts the other as waiting", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const { release } = yield* holdAll
        const [first, second] = yield* Effect.all([
          failure(Effect.scoped(pg.pool.get)),
          failure(Effect.scoped(pg.pool.get))
        ], { concurrency: "unbounded" })
        assert.instanceOf(first, PoolTimeout)
        assert.instanceOf(second, PoolTimeout)
        assert.strictEqual((first as PoolTimeout).waiting, 1, (first as PoolTimeout).message)
        assert.include((first as PoolTimeout).message, "(size 5/5, in use 5, idle 0, waiting 1)")
        assert.strictEqual((second as PoolTimeout).waiting, 0, (second as PoolTimeout).message)
        yield* release
      }))

    it.effect("through SqlClient: an SqlError with the same message whose cause is the PoolTimeout", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const { release } = yield* holdAll
        const error = yield* failure(pg.sql`SELECT 1`)
        assert.instanceOf(error, SqlError)
        assert.isTrue(isPoolError(error.cause))
        assert.instanceOf(error.cause, PoolTimeout)
        assert.strictEqual(error.message, (error.cause as PoolTimeout).message)
        assert.include(error.message, "(size 5/5, in use 5, idle 0, waiting 0)")
        assert.include(error.message, "at span holder-1")
        yield* release
        // the pool serves again once the holders are done
        assert.deepStrictEqual(yield* pg.sql`SELECT 1 AS one`, [{ one: 1 }])
      }))
  })
})
