/**
 * S12 / issue 12 line 5: exact cancel under pipelining, as a property against the real server.
 *
 * Random statements (`SELECT $1::int FROM pg_sleep($2)`, 0–12 ms, half of them prepared, or the
 * same as a simple query with the values inline: half of all) are
 * kept pipelined at depth ≥ 8 on each of 3 connections (one with its own `queryTimeout`); some
 * are cancelled at a random moment (queued, written behind others, or at the head), some hit
 * the timeout. For every run:
 *
 * - no statement that nobody cancelled fails — in particular never with 57014 (a late cancel
 *   signal meant for the statement before it is re-run transparently) — and each gets its own
 *   answer;
 * - every cancelled statement is over on the server (ReadyForQuery read, side socket closed)
 *   within 20 ms of becoming the head: the median always, p99 in the documented run (see the
 *   bounds below: the tail is the server's fork per CancelRequest and the machine's load);
 * - no cancelled statement is settled, and so no connection could be returned, while a cancel
 *   signal for its connection may still arrive (the connection is not `cancelling` then);
 *   statements nobody cancelled may complete meanwhile: their results are theirs;
 * - nothing is left running on the server.
 *
 * `PIPELINE_STATEMENTS=10000 pnpm vitest run test/cancel/s12-pipelined-cancel.test.ts` runs
 * the documented 10,000 statements; CI runs 2,000.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import * as Connect from "../../packages/pg/src/internal/connect.js"
import type { Request, WireConnection } from "../../packages/pg/src/internal/wire/connection.js"
import { QueryTimeout, ServerError } from "../../packages/pg/src/internal/wire/errors.js"
import { optionsFromUrl } from "../pg/options.js"
import { eventuallyNoBackends } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const total = Number(process.env.PIPELINE_STATEMENTS ?? 2_000)
const runs = 4
const depth = 8
const connections = 3
const queryTimeoutMillis = 40

interface Spec {
  readonly sleepMillis: number
  readonly prepare: boolean
  /** Sent as a simple query (its values inline, no parameters) rather than Parse/Bind/Execute. */
  readonly simple: boolean
  /** Cancel this long after submitting it, or never. */
  readonly cancelAfter: number | undefined
  readonly connection: number
}

const spec: FastCheck.Arbitrary<Spec> = FastCheck.record({
  sleepMillis: FastCheck.oneof(FastCheck.constant(0), FastCheck.integer({ min: 0, max: 12 })),
  prepare: FastCheck.boolean(),
  simple: FastCheck.boolean(),
  // one statement in five is cancelled, at a random moment after it was submitted
  cancelAfter: FastCheck.oneof(
    { arbitrary: FastCheck.constant(undefined), weight: 4 },
    { arbitrary: FastCheck.integer({ min: 0, max: 15 }), weight: 1 }
  ),
  connection: FastCheck.integer({ min: 0, max: connections - 1 })
})

interface Figures {
  statements: number
  cancelled: number
  cancelledOnServer: number
  timedOut: number
  rerun: number
  latencies: Array<number>
  failures: Array<string>
}

const open = (timeout: boolean) =>
  Effect.runPromise(Connect.connect(
    Effect.runSync(Connect.resolve(optionsFromUrl(url, applicationName, {
      ...(timeout ? { queryTimeout: `${queryTimeoutMillis} millis` } : {}),
      cancelTimeout: "3 seconds",
      password: Redacted.make(decodeURIComponent(new URL(url).password))
    }))),
    {}
  ))

/** Runs the statements, `depth` in flight per connection, and checks each outcome as it comes. */
const runScenario = (wires: ReadonlyArray<WireConnection>, specs: ReadonlyArray<Spec>, figures: Figures) =>
  new Promise<void>((resolve) => {
    const queues = wires.map((_, c) => specs.map((s, i) => ({ s, i })).filter(({ s }) => s.connection === c))
    let pending = specs.length
    if (pending === 0) return resolve()
    const submitNext = (c: number) => {
      const next = queues[c]!.shift()
      if (next === undefined) return
      const { i, s } = next
      const wire = wires[c]!
      let cancelledAt: number | undefined
      const submitted: { request?: Request } = {}
      const timer = s.cancelAfter === undefined ? undefined : setTimeout(() => {
        cancelledAt = performance.now()
        wire.cancel(submitted.request!, "interrupt")
      }, s.cancelAfter)
      submitted.request = wire.submit(
        s.simple
          ? `SELECT ${i}::int AS i FROM pg_sleep(${s.sleepMillis / 1000})`
          : "SELECT $1::int AS i FROM pg_sleep($2)",
        s.simple ? undefined : [i, s.sleepMillis / 1000],
        false,
        s.prepare && !s.simple,
        undefined,
        (error, results) => {
          const settledAt = performance.now()
          // undefined when it ends at once, inside submit (the connection is closed)
          const request = submitted.request
          if (timer !== undefined) clearTimeout(timer)
          figures.statements++
          if (request !== undefined && request.reruns > 0) figures.rerun++
          const cancelled = cancelledAt !== undefined
          const timedOut = error instanceof QueryTimeout
          // a cancelled statement settled while a cancel signal may still arrive: its caller could
          // hand the connection back too early (statements nobody cancelled may complete meanwhile)
          // (one dropped before it was written was never sent: nothing of it can arrive)
          const sent = request?.endedOnServer === true
          if ((cancelled || timedOut) && sent && wire.state === "cancelling") {
            figures.failures.push(
              `#${i} (cancelled, ${error?.name ?? "succeeded"}) settled while its connection was cancelling`
            )
          }
          if (timedOut) figures.timedOut++
          if (cancelled || timedOut) {
            figures.cancelled++
            if (error instanceof ServerError && error.code !== "57014") {
              figures.failures.push(`#${i} cancelled, failed with ${error.code} ${error.message}`)
            }
            if (sent && error !== undefined) {
              figures.cancelledOnServer++
              figures.latencies.push(settledAt - Math.max(request!.headSince, cancelledAt ?? request!.headSince))
            }
          } else if (error !== undefined) {
            figures.failures.push(
              `#${i} nobody cancelled it, it failed: ${error.name} ${
                (error as { code?: string }).code ?? ""
              } ${error.message}` +
                ` (exposed=${request?.exposed} reruns=${request?.reruns} startedIn=${request?.startedIn} since=${
                  (request?.writtenAt ?? 0) - (wire as any).cancelWrittenAt
                } kind=${request?.kind} cancelReason=${request?.cancelReason} state=${wire.state})`
            )
          } else if (results[0]?.rows[0]?.i !== i) {
            figures.failures.push(`#${i} got ${JSON.stringify(results[0]?.rows)}`)
          }
          if (--pending === 0) resolve()
          else submitNext(c)
        }
      )
    }
    for (let c = 0; c < wires.length; c++) for (let k = 0; k < depth; k++) submitNext(c)
  })

const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

describe("S12 exact cancel under pipelining", () => {
  it.live(`${total} pipelined statements at depth ${depth}, random cancels and timeouts`, () =>
    Effect.gen(function*() {
      const figures: Figures = {
        statements: 0,
        cancelled: 0,
        cancelledOnServer: 0,
        timedOut: 0,
        rerun: 0,
        latencies: [],
        failures: []
      }
      const wires = yield* Effect.acquireRelease(
        Effect.promise(() => Promise.all(Array.from({ length: connections }, (_, c) => open(c === 0)))),
        (wires) => Effect.promise(() => Promise.all(wires.map((w) => new Promise<void>((r) => w.close(r)))))
      )
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(
            FastCheck.array(spec, { minLength: total / runs, maxLength: total / runs }),
            async (specs) => {
              await runScenario(wires, specs, figures)
              // the first failures say what went wrong; a replay is not needed to see them
              if (figures.failures.length > 0) throw new Error(figures.failures.slice(0, 10).join("\n"))
            }
          ),
          { numRuns: runs, endOnFailure: true }
        )
      )
      const p99 = percentile(figures.latencies, 0.99)
      const max = percentile(figures.latencies, 1)
      const p95 = percentile(figures.latencies, 0.95)
      const summary =
        `${figures.statements} statements, ${figures.cancelled} cancelled (${figures.cancelledOnServer} on the ` +
        `server, ${figures.timedOut} by queryTimeout), ${figures.rerun} re-run after a late cancel; cancel latency from ` +
        `head: p50 ${percentile(figures.latencies, 0.5).toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, p99 ${
          p99.toFixed(1)
        } ms, max ${max.toFixed(1)} ms`
      process.stdout.write(`S12: ${summary}\n`)
      assert.deepStrictEqual(figures.failures, [])
      assert.strictEqual(figures.statements, total)
      assert.isAbove(figures.cancelledOnServer, 0, summary)
      // Wall time: the median holds anywhere; the tail is the server's (a forked backend per
      // CancelRequest) and the machine's load. The documented run (a quiet machine) holds the
      // issue's bound at p99; CI, sharing two cores with another test file, the median, and a
      // generous bound on the worst case.
      assert.isAtMost(percentile(figures.latencies, 0.5), 20, summary)
      if (process.env.PIPELINE_STATEMENTS !== undefined) assert.isAtMost(p99, 20, summary)
      assert.isAtMost(max, 1000, summary)
      for (const wire of wires) assert.isTrue(wire.usable || wire.retired, `connection ${wire.id} is ${wire.state}`)
    }).pipe(Effect.scoped), { timeout: 300_000 })

  it.live("nothing of it is left on the server", () =>
    eventuallyNoBackends(url, applicationName, { within: "5 seconds" }))
})
