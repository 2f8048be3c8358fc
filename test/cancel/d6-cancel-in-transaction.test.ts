/**
 * D6 (issue 11 item 6): after a cancel inside a transaction, another session never sees the
 * connection `idle in transaction` for more than a moment, and the interrupted caller resumes
 * within 50 ms (the median of 20 rounds; the slowest round is only held under 1 s, since two
 * test files share two cores).
 *
 * The caller resumes on the server's ReadyForQuery — event-driven, no poll — but only once no
 * cancel signal can still arrive, i.e. the server has also closed the cancel's side socket: a
 * 57014 alone is no proof, because PostgreSQL signals the backend's pid and then its process
 * group, and under load the second signal landed after the first one's 57014 had been sent and
 * cancelled the next transaction's statement (the second test: it failed when the caller was
 * resumed on ReadyForQuery alone). The ROLLBACK follows at once.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { eventuallyActive, withClient } from "../support/backends.js"
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
    // a few more samples after the caller resumed: the ROLLBACK must have followed
    const until = performance.now() + 30
    while (performance.now() < until) await sample()
    return longest
  })

const rounds = 20

describe("D6 a cancel inside a transaction resumes on ReadyForQuery, once no signal can still arrive", () => {
  it.live(
    "never idle in transaction for more than a moment; interrupt to resume within 50 ms (median)",
    () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.make({ url: Redacted.make(url), applicationName, min: 1, max: 1 })
        const sql = pg.sql
        const pid = (yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)[0]!.pid
        const stretches: Array<number> = []
        const took: Array<number> = []
        // round 0 warms the code paths up (the first interrupt of a process pays for JIT): not counted
        for (let i = -1; i < rounds; i++) {
          const fiber = yield* Effect.fork(sql.withTransaction(sql`SELECT pg_sleep(10)`))
          yield* eventuallyActive(url, applicationName, {
            count: 1,
            queryLike: "SELECT pg_sleep(10)",
            within: "5 seconds"
          })
          let resumed!: () => void
          const done = new Promise<void>((resolve) => resumed = resolve)
          const watcher = Effect.runPromise(Effect.promise(() => watchIdleInTransaction(pid, done)))
          const startedAt = performance.now()
          yield* Fiber.interrupt(fiber)
          const elapsed = performance.now() - startedAt
          resumed()
          const stretch = yield* Effect.promise(() => watcher)
          if (i < 0) continue
          took.push(elapsed)
          stretches.push(stretch)
        }
        // Wall-time bounds stay generous (two test files share two cores): the typical round is
        // held to the target, the slowest only to "never the cancelTimeout path" (1 s).
        const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
        const longest = Math.max(...stretches)
        assert.isBelow(
          longest,
          100,
          `idle in transaction for up to ${longest.toFixed(1)} ms: ${stretches.map(Math.round)}`
        )
        const typical = median(took)
        const slowest = Math.max(...took)
        assert.isBelow(typical, 50, `interrupt to resume, median ${typical.toFixed(1)} ms: ${took.map(Math.round)}`)
        assert.isBelow(slowest, 1000, `interrupt to resume up to ${slowest.toFixed(1)} ms: ${took.map(Math.round)}`)
        // the same connection served every round: it was never destroyed
        assert.strictEqual((yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)[0]!.pid, pid)
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)),
    { timeout: 60_000 }
  )

  it.live(
    `${rounds * 10} interrupted transactions: the next transaction's statements are never cancelled`,
    () =>
      Effect.gen(function*() {
        const app = `${applicationName}-next`
        const pg = yield* PgPool.make({ url: Redacted.make(url), applicationName: app, min: 1, max: 1 })
        const sql = pg.sql
        const failures: Array<string> = []
        for (let i = 0; i < rounds * 10; i++) {
          const fiber = yield* Effect.fork(sql.withTransaction(sql`SELECT pg_sleep(10)`))
          yield* eventuallyActive(url, app, { count: 1, queryLike: "SELECT pg_sleep(10)", within: "5 seconds" })
          yield* Fiber.interrupt(fiber)
          const next = yield* Effect.either(sql.withTransaction(sql`SELECT ${i}::int AS i`))
          if (Either.isLeft(next)) failures.push(`round ${i}: ${next.left.message}`)
        }
        assert.deepStrictEqual(failures, [])
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)),
    { timeout: 120_000 }
  )
})
