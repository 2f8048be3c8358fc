/**
 * D1 (issue 11 item 1): a `queryTimeout` that fires while the statement is ending on its own
 * must not resume the caller — nor return the connection — before the cancel is over: the
 * server confirmed it (57014 and ReadyForQuery) or the connection was destroyed. Otherwise the
 * CancelRequest, still on its way, cancels the next borrower's statement.
 *
 * Each round runs a statement that ends within ±2 ms of the 50 ms `queryTimeout` (300 rounds),
 * or every 11th one that surely times out, then a short follower on the same pool of one
 * connection; no follower may fail. Again through a proxy
 * that delays only sockets opened after the pool connected: the cancel's side socket is one.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as TcpProxy from "../support/TcpProxy.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url, { within: "5 seconds" })

// 300 rounds at the edge, and every 11th round one that surely times out (100 ms): on a loaded
// machine the timer can fire a few ms late for a whole run, and the edge rounds then all finish
// first; the sure ones keep the cancel path (and the proxy's delayed side sockets) exercised.
const rounds = 330

// pg_sleep between 48 and 52 ms: deterministic jitter, so a failure can be replayed.
const sleepOf = (i: number) => i % 11 === 10 ? "0.1000" : (0.048 + ((i * 7919) % 41) / 10_000).toFixed(4)

const race = (poolUrl: string, app: string, beforeRounds: Effect.Effect<void> = Effect.void) =>
  Effect.gen(function*() {
    const pg = yield* PgPool.make({
      url: Redacted.make(poolUrl),
      applicationName: app,
      min: 1,
      max: 1,
      queryTimeout: "50 millis",
      cancelTimeout: "2 seconds"
    })
    yield* pg.sql`SELECT 1`
    yield* beforeRounds
    let timedOut = 0
    const failedFollowers: Array<string> = []
    for (let i = 0; i < rounds; i++) {
      const first = yield* Effect.either(pg.sql.unsafe(`SELECT pg_sleep(${sleepOf(i)})`))
      if (Either.isLeft(first)) timedOut++
      const follower = yield* Effect.either(pg.sql<{ n: number }>`SELECT ${i}::int AS n`)
      if (Either.isLeft(follower)) failedFollowers.push(`round ${i}: ${follower.left.message}`)
      else assert.strictEqual(follower.right[0]!.n, i)
    }
    return { timedOut, failedFollowers }
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))

describe("D1 a timed-out statement resumes its caller only after its cancel ended", () => {
  it.live(`${rounds} statements ending at the queryTimeout: no follower is cancelled`, () =>
    Effect.gen(function*() {
      const { failedFollowers, timedOut } = yield* race(url, applicationName)
      assert.deepStrictEqual(failedFollowers, [], `${failedFollowers.length} of ${rounds} followers failed`)
      // the race is real: some of the statements did time out, some did not
      assert.isAbove(timedOut, 0)
      assert.isBelow(timedOut, rounds)
    }), { timeout: 120_000 })

  it.live(
    `${rounds} rounds through a proxy that delays new sockets (the cancel's side socket) by 5 ms`,
    () =>
      Effect.gen(function*() {
        const target = new URL(url)
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => TcpProxy.start({ host: target.hostname, port: Number(target.port) })),
          (proxy) => Effect.promise(() => proxy.close())
        )
        const proxied = new URL(url)
        proxied.port = String(proxy.port)
        const { failedFollowers, timedOut } = yield* race(
          proxied.toString(),
          `${applicationName}-proxy`,
          Effect.sync(() => proxy.setMode({ latency: 5 }, "new"))
        )
        assert.deepStrictEqual(failedFollowers, [], `${failedFollowers.length} of ${rounds} followers failed`)
        assert.isAbove(timedOut, 0)
        // the cancels did go through the proxy's delayed sockets
        assert.isAbove(proxy.accepted(), 1)
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )
})
