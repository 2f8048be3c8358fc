/**
 * The fixed cost of one COPY, in median ms over one-row copies, for ours (`PgPool`'s `copyFrom` /
 * `copyTo`) and `pg-copy-streams` (over one `pg.Client`), beside two floors: a `SELECT 1`
 * through `SqlClient` (one round trip through the pool) and an Effect `Stream.run` of a
 * one-element stream into `Sink.drain` (no I/O: what any Sink-based API costs per run). What a
 * 1,000,000-row COPY adds on top of the server's work (bench/README.md, COPY) is this fixed cost.
 *
 *   node --import tsx bench/copy-latency.ts      (BENCH_DATABASE_URL, or an embedded server)
 *
 * Prints one line per measure and writes bench/results/copy-latency.json.
 */
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as PgServer from "@scoped-pool/test/PgServer"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { fileURLToPath } from "node:url"
import pg, { copyStreams } from "./pg.js"
import { median } from "./shared.js"

const WARMUP = 300
const SAMPLES = 1_000
const ROW = Buffer.from("1\tx\t0.5\n")
const TABLE = "bench_copy_latency"

const rounded = (times: Array<number>) => Math.round(median(times) * 1000) / 1000

/** Median ms of `once`, after the warm-up. */
const sample = async (once: () => Promise<unknown>): Promise<number> => {
  for (let i = 0; i < WARMUP; i++) await once()
  const times: Array<number> = []
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now()
    await once()
    times.push(performance.now() - t0)
  }
  return rounded(times)
}

/** The same for an effect, run in the fiber that samples it (the pool's own runtime). */
const sampleEffect = <E>(once: Effect.Effect<unknown, E>): Effect.Effect<number, E> =>
  Effect.gen(function*() {
    for (let i = 0; i < WARMUP; i++) yield* once
    const times: Array<number> = []
    for (let i = 0; i < SAMPLES; i++) {
      const t0 = performance.now()
      yield* once
      times.push(performance.now() - t0)
    }
    return rounded(times)
  })

const main = async () => {
  const server = process.env.BENCH_DATABASE_URL === undefined ? await PgServer.start() : undefined
  const url = process.env.BENCH_DATABASE_URL ?? server!.url
  const client = new pg.Client({ connectionString: url, application_name: "bench-copy-latency" })
  client.on("error", () => undefined)
  const results: Record<string, number> = {}
  try {
    await client.connect()
    await client.query(`DROP TABLE IF EXISTS ${TABLE}; CREATE UNLOGGED TABLE ${TABLE} (a int, b text, c float8)`)
    results["pg-copy-streams copyFrom, one row"] = await sample(() =>
      pipeline(Readable.from([ROW]), client.query(copyStreams.from(`COPY ${TABLE} FROM STDIN`)))
    )
    results["pg-copy-streams copyTo, one row"] = await sample(async () => {
      for await (const _ of client.query(copyStreams.to("COPY (SELECT 1) TO STDOUT"))) {
        // drained
      }
    })
    await Effect.runPromise(
      Effect.gen(function*() {
        const pool = yield* PgPool.PgPool
        results["ours copyFrom, one row"] = yield* sampleEffect(
          Stream.run(Stream.make(ROW), pool.copyFrom(`COPY ${TABLE} FROM STDIN`))
        )
        results["ours copyTo, one row"] = yield* sampleEffect(Stream.runDrain(pool.copyTo("COPY (SELECT 1) TO STDOUT")))
        results["ours SELECT 1 through SqlClient"] = yield* sampleEffect(pool.sql`SELECT 1`)
        results["Effect Stream.run(Stream.make(x), Sink.drain), no I/O"] = yield* sampleEffect(
          Stream.run(Stream.make(ROW), Sink.drain)
        )
      }).pipe(
        Effect.orDie,
        Effect.provide(PgPool.layer({ url: Redacted.make(url), max: 1, applicationName: "bench-copy-latency" }))
      )
    )
    await client.query(`DROP TABLE ${TABLE}`)
  } finally {
    await client.end().catch(() => undefined)
    await server?.stop()
  }
  for (const [name, ms] of Object.entries(results)) console.log(`${name.padEnd(56)} ${ms.toFixed(3)} ms`)
  const out = join(dirname(fileURLToPath(import.meta.url)), "results", "copy-latency.json")
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(
    out,
    JSON.stringify({ date: new Date().toISOString(), samples: SAMPLES, medianMs: results }, null, 2) + "\n"
  )
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
