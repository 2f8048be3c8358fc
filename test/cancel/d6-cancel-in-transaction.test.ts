/**
 * D6 (issue 11 item 6): after a cancel inside a transaction, another session never sees the
 * connection `idle in transaction` for more than a moment. The interrupted caller resumes on
 * the server's ReadyForQuery once the server confirmed the cancel (57014), not on the close of
 * the cancel's side socket, so the ROLLBACK follows at once.
 *
 * The proxy delays every socket opened after the pool connected — the side socket of each
 * cancel — by 100 ms each way, its close included: a caller that waited for that close would
 * leave the transaction open (aborted) for 100 ms.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { eventuallyActive, withClient } from "../support/backends.js"
import * as TcpProxy from "../support/TcpProxy.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

/**
 * Watches one backend from a separate session, as fast as it can, until `stop` resolves; returns
 * the longest stretch (ms) during which it was seen in a transaction but not running a statement.
 */
const watchIdleInTransaction = (pid: number, stop: Promise<void>) =>
  withClient(url, async (client) => {
    let stopped = false
    void stop.then(() => stopped = true)
    let since: number | undefined
    let longest = 0
    const sample = async () => {
      const { rows } = await client.query<{ state: string | null }>(
        "SELECT state FROM pg_stat_activity WHERE pid = $1",
        [pid]
      )
      const now = performance.now()
      if (rows[0]?.state?.startsWith("idle in transaction")) {
        since ??= now
        longest = Math.max(longest, now - since)
      } else {
        since = undefined
      }
    }
    while (!stopped) await sample()
    // a few more samples after the caller resumed: the ROLLBACK must follow at once
    const until = performance.now() + 30
    while (performance.now() < until) await sample()
    return longest
  })

const rounds = 10

describe("D6 a cancel inside a transaction resumes on ReadyForQuery", () => {
  it.live(
    "through a proxy that delays the cancel's side socket: never idle in transaction for more than a moment",
    () =>
      Effect.gen(function*() {
        const target = new URL(url)
        const proxy = yield* Effect.acquireRelease(
          Effect.promise(() => TcpProxy.start({ host: target.hostname, port: Number(target.port) })),
          (proxy) => Effect.promise(() => proxy.close())
        )
        const proxied = new URL(url)
        proxied.port = String(proxy.port)
        const app = `${applicationName}-proxy`
        const pg = yield* PgPool.make({ url: Redacted.make(proxied.toString()), applicationName: app, min: 1, max: 1 })
        const sql = pg.sql
        const pid = (yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)[0]!.pid
        proxy.setMode({ latency: 100 }, "new")
        const stretches: Array<number> = []
        for (let i = 0; i < rounds; i++) {
          const fiber = yield* Effect.fork(sql.withTransaction(sql`SELECT pg_sleep(10)`))
          yield* eventuallyActive(proxied.toString(), app, {
            count: 1,
            queryLike: "SELECT pg_sleep(10)",
            within: "5 seconds"
          })
          let resumed!: () => void
          const done = new Promise<void>((resolve) => resumed = resolve)
          const watcher = Effect.runPromise(Effect.promise(() => watchIdleInTransaction(pid, done)))
          yield* Fiber.interrupt(fiber)
          resumed()
          stretches.push(yield* Effect.promise(() => watcher))
        }
        const longest = Math.max(...stretches)
        assert.isBelow(longest, 30, `idle in transaction for up to ${longest.toFixed(1)} ms: ${stretches.join(", ")}`)
        // the same connection served every round: it was never destroyed
        assert.strictEqual((yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)[0]!.pid, pid)
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)),
    { timeout: 60_000 }
  )

  it.live("interrupt to resume takes at most 50 ms", () =>
    Effect.gen(function*() {
      const pg = yield* PgPool.make({ url: Redacted.make(url), applicationName, min: 1, max: 1 })
      const sql = pg.sql
      const took: Array<number> = []
      for (let i = 0; i < rounds * 2; i++) {
        const fiber = yield* Effect.fork(sql.withTransaction(sql`SELECT pg_sleep(10)`))
        yield* eventuallyActive(url, applicationName, {
          count: 1,
          queryLike: "SELECT pg_sleep(10)",
          within: "5 seconds"
        })
        const startedAt = performance.now()
        yield* Fiber.interrupt(fiber)
        took.push(performance.now() - startedAt)
      }
      const longest = Math.max(...took)
      assert.isBelow(
        longest,
        50,
        `interrupt to resume up to ${longest.toFixed(1)} ms: ${took.map(Math.round).join(", ")}`
      )
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)), { timeout: 60_000 })
})
