/**
 * What every contender process shares, whichever Effect it runs on: the command line, the
 * `Result` it prints, CPU and memory readings, promise-based loops, the latency recorder of the
 * slow-head benchmark, the `pg_stat_activity` observer of the lifecycle measurements and the
 * COPY data. No `effect` import here: `bench/contender.ts` (Effect 3) and
 * `bench/effect4/contender.ts` (Effect 4) both import this file, each with its own Effect.
 */
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import pg from "./pg.js"

/** What a child reports: its last stdout line is `RESULT {json}`. */
export interface Result {
  readonly contender: string
  readonly workload: string
  /** Throughput workloads. */
  readonly queries?: number
  readonly elapsedMs?: number
  readonly qps?: number
  /** Client CPU (user + system) per query over the measured window, in µs. */
  readonly cpuUsPerQuery?: number
  /** Peak RSS of the process (whole life, warm-up included), in MB. */
  readonly rssMb: number
  /** close: time to close the pool; null when it did not finish within the cap. */
  readonly closeMs?: number | null
  /** close: backends of this contender still on the server 1 s after close (or after the cap). */
  readonly backendsLeft?: number
  /** cancel: timeout fired → backend no longer running the statement, in ms; null = not within the cap. */
  readonly cancelMs?: number | null
  /** cancel: timeout fired → the timed-out effect returned to the caller, in ms; null = not within the cap. */
  readonly returnMs?: number | null
  /** slowhead: `SELECT 1` latencies without the slow statement (baseline) and while it runs. */
  readonly baseline?: LatencySummary
  readonly slow?: LatencySummary
  /** slowhead: how long the slow statement itself took, in ms. */
  readonly slowMs?: number
  /** copy: rows loaded or exported, bytes moved, elapsed ms, client CPU ms. */
  readonly rows?: number
  readonly bytes?: number
  readonly cpuMs?: number
  /** copy: on-CPU time of the server's backend over the same window (a server on this machine only). */
  readonly serverCpuMs?: number
  /** copy: how often that backend blocked over the window (voluntary context switches). */
  readonly serverWaits?: number
  /** copy: CPU time the hypervisor took from this machine over the window, all CPUs (`steal` in /proc/stat). */
  readonly stealMs?: number
  /** Set when the contender cannot run this workload (yet); the runner reports it, not a failure. */
  readonly skipped?: string
  /** checkout: ns per Pool.use round trip (no I/O). */
  readonly nsPerOp?: number
  readonly note?: string
}

// ---------------------------------------------------------------------------------------------
// Command line: `<contender> <workload> [--url URL] [--ms 3000] [--warmup 1000] [--concurrency 10]
//   [--n 10] [--app name] [--cap 3000] [--rows 1000000]`

export interface Args {
  readonly contender: string
  readonly workload: string
  readonly url: string
  readonly measureMs: number
  readonly warmupMs: number
  readonly concurrency: number
  readonly n: number
  readonly app: string
  /** Bound on a close or a cancel before it counts as "did not finish". */
  readonly capMs: number
  /** copy: rows to load / export. */
  readonly rows: number
  /** copy-to, ours: `CopyToOptions.readBatch` in ms (`--read-batch`); the library's default when absent. */
  readonly readBatch: number | undefined
  /** copy: serve timed copies on request (`--serve`, see `serveCopies`) instead of timing one. */
  readonly serve: boolean
  /** The unlogged table of this contender's insert workloads. */
  readonly table: string
}

export const parseArgs = (argv: ReadonlyArray<string>): Args => {
  const [contender = "", workload = "", ...rest] = argv
  const flag = (name: string, fallback: string): string => {
    const i = rest.indexOf(`--${name}`)
    return i >= 0 && rest[i + 1] !== undefined ? rest[i + 1]! : fallback
  }
  return {
    contender,
    workload,
    url: flag("url", process.env.BENCH_DATABASE_URL ?? ""),
    measureMs: Number(flag("ms", "3000")),
    warmupMs: Number(flag("warmup", "1000")),
    concurrency: Number(flag("concurrency", "10")),
    n: Number(flag("n", "10")),
    app: flag("app", `bench-${contender}`),
    capMs: Number(flag("cap", "3000")),
    rows: Number(flag("rows", "1000000")),
    readBatch: rest.includes("--read-batch") ? Number(flag("read-batch", "")) : undefined,
    serve: rest.includes("--serve"),
    table: tableOf(contender)
  }
}

/** The unlogged insert table of a contender (created by the runner). */
export const tableOf = (contender: string): string => `bench_ins_${contender.replace(/[^a-z0-9]/g, "_")}`

/** Prints the result line and exits; a failure exits 1 with the error on stderr. */
export const report = (run: Promise<Result>): void => {
  run.then(
    (result) => {
      console.log(`RESULT ${JSON.stringify(result)}`)
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

// ---------------------------------------------------------------------------------------------
// Statements

export const ROWS_SQL = "SELECT g, g::text, now() FROM generate_series(1,100) g"
export const insertSql = (table: string) => `INSERT INTO ${table} (a, b) VALUES ($1, $2)`
export const SLEEP60 = "SELECT pg_sleep(60)"
export const SLEEP10 = "SELECT pg_sleep(10)"

// ---------------------------------------------------------------------------------------------
// Readings

export const rssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024 * 10) / 10

export const cpuMicros = (): number => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/**
 * The end of a warm-up: when `wallMs` have passed *and* the process has burnt as much CPU time
 * (at least 1 s of it), or at the latest after 4 × `wallMs` (at least 3 s). On a machine shared
 * with other jobs a wall-clock warm-up alone hands a contender a fraction of a core and leaves
 * its JIT cold — measured at a load average of 7: ours-sql needed ~1.2 s of CPU (1.5 s of wall
 * time) to come down from 450 to 60 µs of CPU per `SELECT 1` — so the CPU condition makes the
 * warm-up load-independent; on a quiet machine a client at 10 or 100 concurrent burns a core
 * anyway and it changes little.
 */
export const warmupUntil = (wallMs: number): () => boolean => {
  const t0 = performance.now()
  const cpu0 = cpuMicros()
  const cpuUs = Math.max(wallMs, 1000) * 1000
  const capMs = Math.max(4 * wallMs, 3000)
  return () => {
    const elapsed = performance.now() - t0
    return elapsed >= capMs || (elapsed >= wallMs && cpuMicros() - cpu0 >= cpuUs)
  }
}

/** Waits (sleeping 20 ms at a time) until `done()`, e.g. a `warmupUntil` while workers run. */
export const sleepUntil = async (done: () => boolean): Promise<void> => {
  while (!done()) await sleepMs(20)
}

/** One measured throughput window. */
export interface Window {
  readonly queries: number
  readonly elapsedMs: number
  readonly cpuUs: number
}

export const throughput = (args: Args, w: Window): Result => ({
  contender: args.contender,
  workload: args.workload,
  queries: w.queries,
  elapsedMs: Math.round(w.elapsedMs),
  qps: Math.round(w.queries / (w.elapsedMs / 1000)),
  cpuUsPerQuery: Math.round(w.cpuUs / w.queries * 10) / 10,
  rssMb: rssMb()
})

/** Stops a measured window after `ms`. */
export const after = (ms: number): () => boolean => {
  const until = performance.now() + ms
  return () => performance.now() >= until
}

// ---------------------------------------------------------------------------------------------
// Promise loops (pg-pool, postgres.js): `concurrency` workers, each running `op` back to back
// until `done()`; a transaction counts as one operation.

export const loopPromise = async (
  concurrency: number,
  op: (i: number) => Promise<unknown>,
  done: () => boolean
): Promise<number> => {
  let count = 0
  const worker = async () => {
    while (!done()) {
      await op(count)
      count += 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return count
}

export const measurePromise = async (args: Args, op: (i: number) => Promise<unknown>): Promise<Window> => {
  await loopPromise(args.concurrency, op, warmupUntil(args.warmupMs))
  const cpu0 = cpuMicros()
  const t0 = performance.now()
  const queries = await loopPromise(args.concurrency, op, after(args.measureMs))
  const elapsedMs = performance.now() - t0
  return { queries, elapsedMs, cpuUs: cpuMicros() - cpu0 }
}

// ---------------------------------------------------------------------------------------------
// Slow head: a pool of 10, 99 workers running `SELECT 1` back to back; after a warm-up, a 1 s
// baseline window, then a 100th worker runs `SELECT pg_sleep(2)` (the slow window lasts as long
// as it does), then a second 1 s baseline window, so that a drift of the machine or of the JIT
// weighs on both sides alike. Recorded: the latency of every `SELECT 1` that *started* inside a
// window (those queued behind the slow statement finish after it and are counted too).

/** Workers running `SELECT 1` in the slow-head benchmark (the slow statement is the 100th). */
export const slowHeadWorkers = 99
export const SLOW_SQL = "SELECT pg_sleep(2)"
/** Each of the two baseline windows, before and after the slow one. */
export const slowHeadBaselineMs = 1000
/** Warm-up before the first window: at least 1 s, so that the baseline is not the cold JIT's. */
export const slowHeadWarmupMs = (args: Args): number => Math.max(1000, args.warmupMs)

export interface LatencySummary {
  readonly count: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly p999Ms: number
  readonly maxMs: number
  /** Statements that took over 1 s: those that waited behind the slow statement. */
  readonly over1s: number
}

/**
 * Latencies of the statements that started inside one of its windows (`open()` … `close()`);
 * read `summary()` once the workers have stopped, so that statements still in flight at
 * `close()` count too.
 */
export class LatencyRecorder {
  private readonly samples: Array<number> = []
  private readonly windows: Array<[from: number, to: number]> = []
  open(): void {
    this.windows.push([performance.now(), Infinity])
  }
  close(): void {
    this.windows[this.windows.length - 1]![1] = performance.now()
  }
  /** Call when a statement finished, with the instant it started. */
  record(startedAt: number, now: number): void {
    for (const [from, to] of this.windows) {
      if (startedAt >= from && startedAt < to) {
        this.samples.push(now - startedAt)
        return
      }
    }
  }
  summary(): LatencySummary {
    const s = this.samples.sort((a, b) => a - b)
    const at = (q: number) => s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]!
    const r = (x: number) => Math.round(x * 100) / 100
    return {
      count: s.length,
      p50Ms: r(at(0.5)),
      p99Ms: r(at(0.99)),
      p999Ms: r(at(0.999)),
      maxMs: r(s.length ? s[s.length - 1]! : 0),
      over1s: s.filter((x) => x > 1000).length
    }
  }
}

/** The windows of the slow-head benchmark, driven by `slowHeadPromise` or an Effect twin of it. */
export class SlowHeadRecorder {
  readonly baseline = new LatencyRecorder()
  readonly slow = new LatencyRecorder()
  running = true
  record(startedAt: number): void {
    const now = performance.now()
    this.baseline.record(startedAt, now)
    this.slow.record(startedAt, now)
  }
}

/**
 * The slow-head benchmark over plain promises (postgres.js): `select1` and `slow` each run one
 * statement. The Effect contenders run the same sequence on fibers (see their files).
 */
export const slowHeadPromise = async (
  args: Args,
  select1: () => Promise<unknown>,
  slow: () => Promise<unknown>
): Promise<Result> => {
  const rec = new SlowHeadRecorder()
  const worker = async () => {
    while (rec.running) {
      const t0 = performance.now()
      await select1()
      rec.record(t0)
    }
  }
  const workers = Promise.all(Array.from({ length: slowHeadWorkers }, worker))
  await sleepUntil(warmupUntil(slowHeadWarmupMs(args)))
  rec.baseline.open()
  await sleepMs(slowHeadBaselineMs)
  rec.baseline.close()
  rec.slow.open()
  const t0 = performance.now()
  await slow()
  const slowMs = performance.now() - t0
  rec.slow.close()
  rec.baseline.open()
  await sleepMs(slowHeadBaselineMs)
  rec.baseline.close()
  rec.running = false
  await workers
  return slowHeadResult(args, rec, slowMs)
}

export const slowHeadResult = (args: Args, rec: SlowHeadRecorder, slowMs: number): Result => ({
  contender: args.contender,
  workload: args.workload,
  baseline: rec.baseline.summary(),
  slow: rec.slow.summary(),
  slowMs: Math.round(slowMs),
  rssMb: rssMb(),
  note: `pool max 10, ${slowHeadWorkers} workers, ${SLOW_SQL} by a 100th`
})

// ---------------------------------------------------------------------------------------------
// Lifecycle: a separate observer connection reads pg_stat_activity

export const observer = async (url: string, app: string) => {
  const client = new pg.Client({ connectionString: url, application_name: "bench-observer" })
  client.on("error", () => undefined)
  await client.connect()
  const activeLike = async (like: string): Promise<Array<number>> =>
    (await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE $2",
      [app, like]
    )).rows.map((r) => r.pid)
  const backends = async (): Promise<number> =>
    (await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [app]
    )).rows[0]!.n
  const waitActive = async (like: string, count: number, withinMs = 30_000) => {
    const deadline = Date.now() + withinMs
    for (;;) {
      const pids = await activeLike(like)
      if (pids.length >= count) return pids
      if (Date.now() > deadline) throw new Error(`only ${pids.length}/${count} backends active in ${like}`)
      await sleepMs(10)
    }
  }
  /** Polls every 2 ms until `pid` no longer runs `query`; the instant it stopped, or undefined past `until`. */
  const waitGone = async (pid: number, query: string, until: () => number): Promise<number | undefined> => {
    while (performance.now() < until()) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query = $2",
        [pid, query]
      )
      const now = performance.now()
      if (rows[0]!.n === 0) return now
      await sleepMs(2)
    }
    return undefined
  }
  return { client, activeLike, backends, waitActive, waitGone, end: () => client.end().catch(() => undefined) }
}

export const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Caps a promise: resolves to the elapsed ms, or null when `cap` passed first. */
export const timed = async (p: Promise<unknown>, capMs: number): Promise<number | null> => {
  const t0 = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  const done = await Promise.race([
    p.then(() => true, () => true),
    new Promise<false>((r) => {
      timer = setTimeout(() => r(false), capMs)
    })
  ])
  clearTimeout(timer)
  return done ? Math.round((performance.now() - t0) * 10) / 10 : null
}

/** Cancel latency: the deadline of the statement under `Effect.timeout`. */
export const cancelTimeoutMs = 300

export const cancelResult = (
  args: Args,
  fired: number,
  goneAt: number | undefined,
  returnedAt: number | undefined,
  note = ""
): Result => {
  const round = (t: number | undefined) => t === undefined ? null : Math.round((t - fired) * 10) / 10
  return {
    contender: args.contender,
    workload: args.workload,
    cancelMs: round(goneAt),
    returnMs: round(returnedAt),
    rssMb: rssMb(),
    note: `timeout ${cancelTimeoutMs} ms; latencies from the instant the timeout fired${note}`
  }
}

// ---------------------------------------------------------------------------------------------
// COPY: 3 columns (int, text, float8), the same rows for every contender

/** The table a COPY contender loads into (created, emptied and dropped by the contender). */
export const copyTable = (contender: string): string => `bench_copy_${contender.replace(/[^a-z0-9]/g, "_")}`
export const copyCreateSql = (table: string) =>
  // No autovacuum: its worker would take CPU from the backend being measured (the table is dropped after).
  `DROP TABLE IF EXISTS ${table}; CREATE UNLOGGED TABLE ${table} (a int, b text, c float8) WITH (autovacuum_enabled = off)`

/** Row i of the data set. */
export const copyRow = (i: number): readonly [number, string, number] => [i, `row-${i}`, i / 4]

/**
 * The data set in PostgreSQL's text COPY format, in chunks of `rowsPerChunk` lines (about
 * 64 KB each), generated lazily so that the source costs the same for every COPY contender.
 */
export function* copyTextChunks(rows: number, rowsPerChunk = 2500): Generator<Buffer> {
  for (let start = 0; start < rows; start += rowsPerChunk) {
    let s = ""
    const end = Math.min(rows, start + rowsPerChunk)
    for (let i = start; i < end; i++) s += `${i}\trow-${i}\t${i / 4}\n`
    yield Buffer.from(s)
  }
}

/** What a COPY (or the INSERT path) moved. */
export interface Moved {
  readonly rows: number
  readonly bytes?: number
}

export const copyResult = (
  args: Args,
  moved: Moved,
  elapsedMs: number,
  cpuUs: number,
  note: string,
  server?: BackendSpan
): Result => ({
  contender: args.contender,
  workload: args.workload,
  rows: moved.rows,
  ...(moved.bytes !== undefined ? { bytes: moved.bytes } : {}),
  elapsedMs: Math.round(elapsedMs),
  qps: Math.round(moved.rows / (elapsedMs / 1000)),
  cpuMs: Math.round(cpuUs / 1000),
  ...(server !== undefined
    ? { serverCpuMs: Math.round(server.cpuMs), serverWaits: server.waits, stealMs: Math.round(server.stealMs) }
    : {}),
  rssMb: rssMb(),
  note
})

/** What the backend did over a window: its on-CPU time, and how often it blocked (waited). */
export interface BackendSpan {
  readonly cpuMs: number
  /** Voluntary context switches: each a wait for input (or for the socket to drain). */
  readonly waits: number
  /**
   * CPU time the hypervisor took from this machine's CPUs (`steal` of /proc/stat's `cpu` line,
   * in USER_HZ ticks of 10 ms): time the backend could not run although it was ready.
   */
  readonly stealMs: number
}

/** /proc/stat's `steal` over all CPUs, in ms (ticks of 10 ms). */
const stealMs = (): number => Number(/^cpu\s+(?:\d+\s+){7}(\d+)/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]) * 10

/**
 * A reader of the backend process `pid` of a server on this machine (Linux: on-CPU ns in
 * `/proc/<pid>/schedstat`, `voluntary_ctxt_switches` in `/proc/<pid>/status`); it reads
 * `undefined` when it cannot (a remote server). A COPY of this size is bound by its backend,
 * whose speed swings between rounds on a shared machine: elapsed minus its CPU time is what the
 * client adds, and its waits say whether it ever waited for the client.
 */
export const backendReader = (pid: number | undefined) => (): BackendSpan | undefined => {
  if (pid === undefined) return undefined
  try {
    const cpuMs = Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6
    const waits = Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1])
    const steal = stealMs()
    return Number.isFinite(cpuMs) && Number.isFinite(waits) && Number.isFinite(steal)
      ? { cpuMs, waits, stealMs: steal }
      : undefined
  } catch {
    return undefined
  }
}

/** What `read` reports between now and the call of the function returned, when both reads worked. */
export const spanOf = (read: () => BackendSpan | undefined) => {
  const start = read()
  return (): BackendSpan | undefined => {
    const end = read()
    return start === undefined || end === undefined
      ? undefined
      : { cpuMs: end.cpuMs - start.cpuMs, waits: end.waits - start.waits, stealMs: end.stealMs - start.stealMs }
  }
}

/**
 * A COPY contender's timed copies. Alone, one: its result. Served (`--serve`), as many as the
 * runner asks for: the process prints `READY` once warm, then times one copy for each `go` line on
 * its stdin and prints it as a `COPY {…}` line, until `end` (or stdin's end); its result is the
 * last. The runner serves two or three contenders at once and asks them in turn, so that copies
 * of different clients run a second apart, at the server's speed of that moment (see bench/README,
 * COPY). `between` runs before every copy but the first (a load empties its table), unmeasured.
 */
export const serveCopies = async (
  args: Args,
  once: () => Promise<Result>,
  between: () => Promise<unknown>
): Promise<Result> => {
  if (!args.serve) return once()
  const lines = stdinLines()
  console.log("READY")
  let last: Result | undefined
  for (let i = 0; (await lines()) === "go"; i++) {
    if (i > 0) await between()
    last = await once()
    console.log(`COPY ${JSON.stringify(last)}`)
  }
  if (last === undefined) throw new Error("served no copy")
  return last
}

/** The next line of stdin, or `undefined` once it has ended. */
const stdinLines = (): () => Promise<string | undefined> => {
  const queued: Array<string> = []
  const waiting: Array<(line: string | undefined) => void> = []
  let ended = false
  const reader = createInterface({ input: process.stdin })
  reader.on("line", (line) => {
    const wake = waiting.shift()
    if (wake !== undefined) wake(line)
    else queued.push(line)
  })
  reader.on("close", () => {
    ended = true
    for (const wake of waiting.splice(0)) wake(undefined)
  })
  return () =>
    queued.length > 0
      ? Promise.resolve(queued.shift())
      : ended
      ? Promise.resolve(undefined)
      : new Promise((resolve) => waiting.push(resolve))
}

/** The median of `xs` (the upper one of an even count). */
export const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

/** A bootstrap 95 % interval of the median of `xs` (10,000 resamples, a fixed seed: the same figures each time). */
export const medianInterval = (xs: ReadonlyArray<number>): readonly [number, number] => {
  let seed = 1
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  const medians: Array<number> = []
  for (let b = 0; b < 10_000; b++) {
    medians.push(median(Array.from({ length: xs.length }, () => xs[Math.floor(next() * xs.length)]!)))
  }
  medians.sort((a, b) => a - b)
  return [medians[250]!, medians[9750]!]
}

/** Reads a contender's CPU and wall time over `f` (promise contenders), and its backend's with `server`. */
export const measureCopy = async (
  args: Args,
  f: () => Promise<Moved>,
  note: string,
  server: () => BackendSpan | undefined = () => undefined
): Promise<Result> => {
  const serverSpan = spanOf(server)
  const cpu0 = cpuMicros()
  const t0 = performance.now()
  const moved = await f()
  const elapsed = performance.now() - t0
  return copyResult(args, moved, elapsed, cpuMicros() - cpu0, note, serverSpan())
}
