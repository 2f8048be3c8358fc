/**
 * D2 (issue 11 item 2): a lease that the pool's close force-releases at `closeTimeout` — held
 * by a fiber outside the closing fiber tree (`forkDaemon`, `runFork`) — leaves its holder with
 * a connection that is closing or dead. Whatever the holder does next fails at once with a
 * typed error, also inside `withTransaction`, whose ROLLBACK runs uninterruptibly; nothing
 * hangs, and the statement that was running is gone on the server.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { activeCount, eventuallyActive } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const openPool = (app: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const pg = yield* PgPool.make({
      url: Redacted.make(url),
      applicationName: app,
      min: 2,
      max: 2,
      closeTimeout: "200 millis"
    }).pipe(Scope.extend(scope), Effect.provide(Reactivity.layer))
    return { pg, scope }
  })

/** Closes the pool's scope and waits (bounded) for the holder, which must have failed typed. */
const closeAndAwait = <A, E>(scope: Scope.CloseableScope, holder: Fiber.Fiber<A, E>) =>
  Effect.gen(function*() {
    const startedAt = Date.now()
    yield* Scope.close(scope, Exit.void)
    const exit = yield* Fiber.await(holder).pipe(Effect.timeoutOption("3 seconds"))
    return { exit, afterMillis: Date.now() - startedAt }
  })

describe("D2 a force-released lease fails its holder at once", () => {
  it.live("forkDaemon holder: the running statement fails typed, the next one fails at once, typed", () =>
    Effect.gen(function*() {
      const app = `${applicationName}-daemon`
      const { pg, scope } = yield* openPool(app)
      const outcomes: Array<string> = []
      const holder = yield* Effect.forkDaemon(pg.use((conn) =>
        Effect.gen(function*() {
          const running = yield* Effect.either(conn.query("SELECT pg_sleep(30)", []))
          outcomes.push(Either.isLeft(running) ? running.left._tag : "ok")
          const startedAt = Date.now()
          const next = yield* Effect.either(conn.query("SELECT 1", []))
          outcomes.push(Either.isLeft(next) ? next.left._tag : "ok")
          outcomes.push(`next after ${Date.now() - startedAt} ms`)
          const third = yield* Effect.either(conn.queryRaw("SELECT 2", []))
          outcomes.push(Either.isLeft(third) ? third.left._tag : "ok")
        })
      ))
      yield* eventuallyActive(url, app, { count: 1, queryLike: "SELECT pg_sleep(30)", within: "5 seconds" })
      const { afterMillis, exit } = yield* closeAndAwait(scope, holder)
      assert.isTrue(exit._tag === "Some", "the holder hangs")
      assert.isBelow(afterMillis, 2000)
      assert.strictEqual(outcomes[0], "PgConnectionLost")
      assert.strictEqual(outcomes[1], "PgConnectionLost")
      assert.isBelow(Number(/(\d+) ms/.exec(outcomes[2]!)![1]), 50, outcomes[2])
      assert.strictEqual(outcomes[3], "PgConnectionLost")
      assert.strictEqual(yield* Effect.promise(() => activeCount(url, app, "SELECT pg_sleep(30)")), 0)
    }))

  it.live("runFork holder that runs its next statement only after the close", () =>
    Effect.gen(function*() {
      const app = `${applicationName}-runfork`
      const { pg, scope } = yield* openPool(app)
      const runtime = yield* Effect.runtime<never>()
      let next: Either.Either<unknown, { readonly _tag: string }> | undefined
      const released = yield* Effect.makeLatch(false)
      const leased = yield* Effect.makeLatch(false)
      const holder = Runtime.runFork(runtime)(pg.use((conn) =>
        Effect.gen(function*() {
          yield* conn.query("SELECT 1", [])
          yield* leased.open
          yield* released.await
          next = yield* Effect.either(conn.query("SELECT 2", []))
        })
      ))
      yield* leased.await
      const { afterMillis, exit } = yield* Effect.gen(function*() {
        const startedAt = Date.now()
        yield* Scope.close(scope, Exit.void)
        yield* released.open
        const exit = yield* Fiber.await(holder).pipe(Effect.timeoutOption("3 seconds"))
        return { exit, afterMillis: Date.now() - startedAt }
      })
      assert.isTrue(exit._tag === "Some", "the holder hangs")
      assert.isBelow(afterMillis, 2000)
      assert.isDefined(next)
      assert.isTrue(Either.isLeft(next!))
      assert.strictEqual((next as Either.Left<{ readonly _tag: string }, unknown>).left._tag, "PgConnectionLost")
    }))

  it.live("inside withTransaction: the holder's next statement and the uninterruptible ROLLBACK fail at once", () =>
    Effect.gen(function*() {
      const app = `${applicationName}-tx`
      const { pg, scope } = yield* openPool(app)
      const sql = pg.sql
      const outcomes: Array<string> = []
      const holder = yield* Effect.forkDaemon(
        sql.withTransaction(Effect.gen(function*() {
          yield* sql`SELECT 1`
          const running = yield* Effect.either(sql`SELECT pg_sleep(30)`)
          outcomes.push(Either.isLeft(running) ? "failed" : "ok")
          const next = yield* Effect.either(sql`SELECT 2`)
          outcomes.push(Either.isLeft(next) ? "failed" : "ok")
          return yield* Effect.fail("give up" as const)
        }))
      )
      yield* eventuallyActive(url, app, { count: 1, queryLike: "SELECT pg_sleep(30)", within: "5 seconds" })
      const { afterMillis, exit } = yield* closeAndAwait(scope, holder)
      assert.isTrue(exit._tag === "Some", "the holder hangs")
      assert.isBelow(afterMillis, 2000)
      assert.deepStrictEqual(outcomes, ["failed", "failed"])
      // the transaction ended with a typed failure (its own, or the lost connection), not a defect
      const result = (exit as { value: Exit.Exit<unknown, unknown> }).value
      assert.isTrue(Exit.isFailure(result))
      assert.strictEqual(yield* Effect.promise(() => activeCount(url, app, "SELECT pg_sleep(30)")), 0)
    }))
})
