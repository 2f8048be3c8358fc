/**
 * Where a 1,000,000-row load's time goes, for ours (`PgPool`'s `copyFrom`, run by `Stream.run`)
 * and `pg-copy-streams` (`pipeline` into `from()`), copy by copy in one process, in turn:
 *
 * - `start`: from the call to the COPY's first byte handed to the socket;
 * - `end`: from the ReadyForQuery read off the socket to the caller going on;
 * - `server CPU`: the backend's on-CPU time over the copy (/proc, when the server runs here);
 * - `server off-CPU`: between those two socket events, the time the backend was not on a CPU
 *   (waiting for data, or preempted);
 *
 * and, beside them, the floor of any Sink-based API: an Effect `Stream.run` of the same 400
 * chunks into a scoped sink that does nothing, and `Stream.runForEachChunk` of them, no I/O —
 * each run "cold", after a pause as long as a copy (the state a real copy's last steps run in:
 * a JIT-compiled but cache-cold runtime), and "warm", back to back.
 *
 * The backend's work is the same with either client (bench/README, COPY: `server CPU`, pooled
 * 1.000); what separates the two clients is `start + end`, and this script shows how much of it
 * is the Stream.run floor.
 *
 *   node --import tsx bench/copy-phases.ts      (BENCH_DATABASE_URL, or an embedded server)
 *
 * Prints a markdown table and writes bench/results/copy-phases.json.
 */
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as PgServer from "@scoped-pool/test/PgServer"
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import { mkdirSync, writeFileSync } from "node:fs"
import net from "node:net"
import { dirname, join } from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { fileURLToPath } from "node:url"
import pg, { copyStreams } from "./pg.js"
import { backendReader, copyCreateSql, copyTextChunks, median, medianInterval, spanOf } from "./shared.js"

const ROWS = 1_000_000
const PAIRS = Number(process.env.PAIRS ?? 21)
const FLOOR_SAMPLES = Number(process.env.FLOOR_SAMPLES ?? 21)
/** A pause as long as a copy, before each cold floor sample. */
const PAUSE_MS = 400
const TABLE = "bench_copy_phases"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The two socket events a phase is timed by, seen by any client in this process: the first write
 * after `arm`, and the last read that ends with a ReadyForQuery (`Z`, length 5, status).
 */
const probe = (() => {
  const socket = net.Socket.prototype as unknown as {
    write: (...args: Array<unknown>) => boolean
    push: (chunk: unknown, ...args: Array<unknown>) => boolean
  }
  let armed = false
  let firstWrite = 0
  let readyForQuery = 0
  const write = socket.write
  socket.write = function(this: unknown, ...args: Array<unknown>) {
    if (armed && firstWrite === 0) firstWrite = performance.now()
    return write.apply(this, args)
  }
  const push = socket.push
  socket.push = function(this: unknown, chunk: unknown, ...args: Array<unknown>) {
    if (armed && chunk instanceof Uint8Array && chunk.length >= 6 && chunk[chunk.length - 6] === 0x5a) {
      readyForQuery = performance.now()
    }
    return push.call(this, chunk, ...args)
  }
  return {
    arm: () => {
      armed = true
      firstWrite = 0
      readyForQuery = 0
    },
    disarm: () => {
      armed = false
      return { firstWrite, readyForQuery }
    }
  }
})()

interface Phases {
  readonly elapsedMs: number
  readonly startMs: number
  readonly endMs: number
  readonly serverCpuMs: number | undefined
  readonly serverOffCpuMs: number | undefined
}

const timed = async (pid: number, run: () => Promise<unknown>): Promise<Phases> => {
  const server = spanOf(backendReader(pid))
  probe.arm()
  const t0 = performance.now()
  await run()
  const t1 = performance.now()
  const { firstWrite, readyForQuery } = probe.disarm()
  const span = server()
  return {
    elapsedMs: t1 - t0,
    startMs: firstWrite - t0,
    endMs: t1 - readyForQuery,
    serverCpuMs: span?.cpuMs,
    serverOffCpuMs: span === undefined ? undefined : readyForQuery - firstWrite - span.cpuMs
  }
}

/** A sink as ours is built (a scope, a finalizer, a wait, a read loop), doing nothing. */
const idleSink: Sink.Sink<number, Uint8Array> = Sink.unwrapScoped(Effect.gen(function*() {
  yield* Effect.addFinalizer(() => Effect.void)
  yield* Effect.yieldNow()
  let n = 0
  const loop: Channel.Channel<never, Chunk.Chunk<Uint8Array>, never, never, number, unknown> = Channel.readWithCause({
    onInput: (chunk: Chunk.Chunk<Uint8Array>) => {
      n += chunk.length
      return loop
    },
    onFailure: (cause) => Channel.failCause(cause),
    onDone: () => Channel.fromEffect(Effect.map(Effect.yieldNow(), () => n))
  })
  return Sink.fromChannel(loop)
}))

const floor = (once: Effect.Effect<unknown>, cold: boolean) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = -3; i < FLOOR_SAMPLES; i++) {
      if (cold) yield* Effect.promise(() => sleep(PAUSE_MS))
      const t0 = performance.now()
      yield* once
      if (i >= 0) times.push(performance.now() - t0)
    }
    return median(times)
  })

const main = async () => {
  const server = process.env.BENCH_DATABASE_URL === undefined ? await PgServer.start() : undefined
  const url = process.env.BENCH_DATABASE_URL ?? server!.url
  const chunks = [...copyTextChunks(ROWS)]
  const admin = new pg.Client({ connectionString: url, application_name: "bench-copy-phases-admin" })
  const client = new pg.Client({ connectionString: url, application_name: "bench-copy-phases" })
  admin.on("error", () => undefined)
  client.on("error", () => undefined)
  const phases: Record<"ours" | "pg-copy-streams", Array<Phases>> = { ours: [], "pg-copy-streams": [] }
  const floors: Record<string, number> = {}
  try {
    await admin.connect()
    await client.connect()
    await admin.query(`${copyCreateSql(`${TABLE}_ours`)}; ${copyCreateSql(`${TABLE}_theirs`)}`)
    const theirPid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid
    const theirs = () =>
      pipeline(Readable.from(chunks), client.query(copyStreams.from(`COPY ${TABLE}_theirs FROM STDIN`)))
    await Effect.runPromise(
      Effect.gen(function*() {
        const pool = yield* PgPool.PgPool
        const ourPid = (yield* pool.sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)[0]!.pid
        const ours = Stream.run(Stream.fromIterable(chunks), pool.copyFrom(`COPY ${TABLE}_ours FROM STDIN`))
        const runtime = yield* Effect.runtime<never>()
        const runOurs = () => Runtime.runPromise(runtime)(ours)
        // Three copies each first (the JIT's warm-up), then pairs, every other one in reverse order.
        for (let i = -3; i < PAIRS; i++) {
          for (const who of i % 2 === 0 ? ["ours", "pg-copy-streams"] as const : ["pg-copy-streams", "ours"] as const) {
            yield* Effect.promise(() => admin.query(`TRUNCATE ${TABLE}_ours, ${TABLE}_theirs`))
            const p = yield* Effect.promise(() => who === "ours" ? timed(ourPid, runOurs) : timed(theirPid, theirs))
            if (i >= 0) phases[who].push(p)
          }
        }
        floors["Stream.run into a scoped sink that does nothing, cold"] = yield* floor(
          Stream.run(Stream.fromIterable(chunks), idleSink),
          true
        )
        floors["Stream.runForEachChunk (no sink), cold"] = yield* floor(
          Stream.runForEachChunk(Stream.fromIterable(chunks), () => Effect.void),
          true
        )
        floors["Stream.run into a scoped sink that does nothing, warm"] = yield* floor(
          Stream.run(Stream.fromIterable(chunks), idleSink),
          false
        )
      }).pipe(
        Effect.orDie,
        Effect.provide(PgPool.layer({ url: Redacted.make(url), max: 1, applicationName: "bench-copy-phases" }))
      )
    )
    await admin.query(`DROP TABLE ${TABLE}_ours, ${TABLE}_theirs`)
  } finally {
    await client.end().catch(() => undefined)
    await admin.end().catch(() => undefined)
    await server?.stop()
  }

  const column = (who: keyof typeof phases, key: keyof Phases) => {
    const xs = phases[who].map((p) => p[key]).filter((x): x is number => x !== undefined)
    return xs.length === 0 ? undefined : median(xs)
  }
  const ms = (x: number | undefined) => x === undefined ? "—" : x.toFixed(2)
  const ratios = phases.ours.map((p, i) => phases["pg-copy-streams"][i]!.elapsedMs / p.elapsedMs)
  console.log(`${ROWS} rows, ${chunks.length} chunks, ${PAIRS} pairs; medians in ms\n`)
  console.log("| client | elapsed | start | end | server CPU | server off-CPU |")
  console.log("|---|---:|---:|---:|---:|---:|")
  for (const who of ["ours", "pg-copy-streams"] as const) {
    console.log(
      `| ${who} | ${ms(column(who, "elapsedMs"))} | ${ms(column(who, "startMs"))} | ${ms(column(who, "endMs"))} | ${
        ms(column(who, "serverCpuMs"))
      } | ${ms(column(who, "serverOffCpuMs"))} |`
    )
  }
  console.log(
    `\npg-copy-streams' time ÷ ours, pair by pair: ${median(ratios).toFixed(3)} (95 % ${
      medianInterval(ratios).map((x) => x.toFixed(3)).join("–")
    }; ours faster in ${ratios.filter((x) => x > 1).length} / ${ratios.length})\n`
  )
  console.log("| floor: the same chunks, no I/O | ms |")
  console.log("|---|---:|")
  for (const [name, value] of Object.entries(floors)) console.log(`| ${name} | ${value.toFixed(2)} |`)
  const out = join(dirname(fileURLToPath(import.meta.url)), "results", "copy-phases.json")
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(
    out,
    JSON.stringify({ date: new Date().toISOString(), rows: ROWS, pairs: PAIRS, phases, floorsMs: floors }, null, 2) +
      "\n"
  )
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
