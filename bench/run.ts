/**
 * Benchmarks side by side with the peers, as ratios measured in the same run.
 *
 *   pnpm bench            full run (3 interleaved rounds; ~15 min on 2 cores)
 *   pnpm bench --quick    everyday run (1 round × 1 s; a few minutes)
 *   pnpm bench --copy     adds the COPY benchmark (1,000,000 rows; 100,000 with --quick)
 *   options: --rounds N, --ms N (measured window), --warmup N, --cap N, --copy-rows N, --copy-rounds N, --copy-pairs N,
 *            --only throughput,slowhead,lifecycle,copy   --contenders a,b,…
 *            --no-lifecycle, --no-slowhead, --no-pgbench, --tsx
 *
 * Starts one embedded PostgreSQL (or uses BENCH_DATABASE_URL), then forks a contender process
 * per contender × workload × round — `bench/contender.ts` (Effect 3 contenders) or
 * `bench/effect4/contender.ts` (Effect 4) — in interleaved rounds (A B C D E A B C D E …), and
 * takes medians. Writes bench/results/latest.json, latest.md (with the targets of issues 12, 13
 * and 17 evaluated) and chart.svg. See bench/README.md.
 */
import * as PgServer from "@scoped-pool/test/PgServer"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { cpus, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { renderChart } from "./chart.js"
import pg from "./pg.js"
import type { LatencySummary, Result } from "./shared.js"
import { copyTable, medianInterval, tableOf } from "./shared.js"

const here = dirname(fileURLToPath(import.meta.url))
const root = dirname(here)
const resultsDir = join(here, "results")

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const opt = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? Number(argv[i + 1]) : fallback
}
const list = (name: string): ReadonlyArray<string> | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]!.split(",") : undefined
}
const rounds = opt("rounds", quick ? 1 : 3)
// 2.5 s windows in full mode (3 s before the Effect 4 contenders came): keeps the full run
// within ~15 minutes with nine contenders.
const measureMs = opt("ms", quick ? 1000 : 2500)
const warmupMs = opt("warmup", quick ? 500 : 1000)
/** Bound on a close or a cancel before it counts as "did not finish". */
const capMs = opt("cap", quick ? 2000 : 3000)
const copyRows = opt("copy-rows", quick ? 100_000 : 1_000_000)
// COPY rounds are short (~0.5 s each) and at the server's bound, where a round's noise is as large
// as the difference between the contenders: more of them than of the throughput rounds.
const copyRounds = opt("copy-rounds", quick ? 1 : Math.max(rounds, 11))
/** COPYs each contender is asked for in turn (the INSERT path runs copyRounds times, a process each). */
const copyPairs = opt("copy-pairs", quick ? 2 : 55)
const only = list("only")
const section = (name: string, on: boolean) => only ? only.includes(name) : on
const runThroughput = section("throughput", true)
const runSlowHead = section("slowhead", !argv.includes("--no-slowhead"))
const runLifecycle = section("lifecycle", !argv.includes("--no-lifecycle"))
const runCopy = section("copy", argv.includes("--copy"))
const withPgbench = !argv.includes("--no-pgbench")
const pick = list("contenders")
const picked = (c: string) => pick === undefined || pick.includes(c)
const lifecycleRounds = quick ? 1 : 3
const closeSizes = quick ? [100] : [10, 50, 100]

// ---------------------------------------------------------------------------------------------
// Contenders

type Entry = "effect3" | "effect4"
interface Contender {
  readonly label: string
  readonly color: string
  readonly entry: Entry
}
const registry: Record<string, Contender> = {
  "ours-sql": { label: "ours (SqlClient)", color: "#2563eb", entry: "effect3" },
  "ours-sql-nopipe": { label: "ours (SqlClient, pipelining off)", color: "#1e3a8a", entry: "effect3" },
  "ours-raw": { label: "ours (raw PgPool.use)", color: "#60a5fa", entry: "effect3" },
  "effect4": { label: "@effect/sql-pg 4 (Effect 4)", color: "#dc2626", entry: "effect4" },
  "effect4-mux": { label: "@effect/sql-pg 4, multiplex", color: "#f97316", entry: "effect4" },
  "effect-sql-pg": { label: "@effect/sql-pg 0.53", color: "#f59e0b", entry: "effect3" },
  "pg-pool": { label: "pg-pool (pg.Pool)", color: "#6b7280", entry: "effect3" },
  "postgres-js": { label: "postgres.js", color: "#10b981", entry: "effect3" },
  "pgbench": { label: "pgbench (C, reference)", color: "#c4b5fd", entry: "effect3" },
  "pg-copy-streams": { label: "pg-copy-streams", color: "#6b7280", entry: "effect3" },
  "ours-copy": { label: "ours (copyFrom / copyTo)", color: "#2563eb", entry: "effect3" }
}
const label = (c: string) => registry[c]?.label ?? c

const throughputContenders = [
  "ours-sql",
  "ours-sql-nopipe",
  "ours-raw",
  "effect4",
  "effect4-mux",
  "effect-sql-pg",
  "pg-pool",
  "postgres-js"
].filter(picked)
const slowHeadContenders = ["ours-sql", "ours-sql-nopipe", "effect4", "effect4-mux", "postgres-js"].filter(picked)

interface Workload {
  readonly id: string
  readonly kind: "select1" | "rows100" | "tx3" | "insert"
  readonly concurrency: number
  readonly label: string
}
const workloads: ReadonlyArray<Workload> = [
  { id: "select1-c1", kind: "select1", concurrency: 1, label: "SELECT 1 ×1" },
  { id: "select1-c10", kind: "select1", concurrency: 10, label: "SELECT 1 ×10" },
  { id: "select1-c100", kind: "select1", concurrency: 100, label: "SELECT 1 ×100" },
  { id: "rows100-c10", kind: "rows100", concurrency: 10, label: "100 rows ×10" },
  { id: "tx3-c10", kind: "tx3", concurrency: 10, label: "3-stmt tx ×10" },
  { id: "insert-c10", kind: "insert", concurrency: 10, label: "insert ×10" }
]

// ---------------------------------------------------------------------------------------------
// Children: tracked so that a failure or Ctrl-C stops them all

const children = new Set<ChildProcess>()
const killChildren = () => {
  for (const child of children) child.kill("SIGKILL")
}
process.on("exit", killChildren)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping children and the server`)
    killChildren()
    process.exit(130)
  })
}

const runChild = (
  command: string,
  args: ReadonlyArray<string>,
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env
): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    children.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("close", (code) => {
      clearTimeout(timer)
      children.delete(child)
      resolve({ code, stdout, stderr })
    })
  })

// The children run bundles (esbuild, which tsx ships) rather than tsx: they start in ~0.3 s
// instead of ~1.5 s and load no transpiler. One bundle per Effect: bench/contender.ts resolves
// `effect` to Effect 3, bench/effect4/contender.ts to Effect 4 (its own package). `--tsx` (or a
// failed build) runs `node --import tsx <file>` instead. The bundles live under bench/node_modules
// so that what they leave unbundled (`pg`, `pg-copy-streams`, required at run time) resolves as
// from bench/.
const sources: Record<Entry, string> = {
  effect3: join(here, "contender.ts"),
  effect4: join(here, "effect4", "contender.ts")
}
const bundleDir = join(here, "node_modules", ".cache", "scoped-pool-bench")
const childEntry: Record<Entry, ReadonlyArray<string>> = {
  effect3: ["--import", "tsx", sources.effect3],
  effect4: ["--import", "tsx", sources.effect4]
}
const buildChildren = async (): Promise<string> => {
  if (argv.includes("--tsx")) return "tsx (--tsx)"
  try {
    const require = createRequire(join(root, "package.json"))
    const esbuild = createRequire(require.resolve("tsx/package.json"))("esbuild") as {
      build: (options: Record<string, unknown>) => Promise<unknown>
    }
    for (const entry of ["effect3", "effect4"] as const) {
      // Code splitting: a peer's library (imported dynamically) is a chunk loaded only by its contender.
      const outdir = join(bundleDir, entry)
      rmSync(outdir, { recursive: true, force: true })
      await esbuild.build({
        entryPoints: { contender: sources[entry] },
        bundle: true,
        splitting: true,
        platform: "node",
        format: "esm",
        target: "node20",
        outdir,
        outExtension: { ".js": ".mjs" },
        external: ["pg-native"],
        logLevel: "error",
        banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
      })
      childEntry[entry] = [join(outdir, "contender.mjs")]
    }
    return "esbuild bundles"
  } catch (error) {
    console.error(`bundling the contenders failed, children run under tsx: ${String(error)}`)
    return "tsx (bundle failed)"
  }
}

/**
 * COPY rounds put the server and the contender on CPUs of their own, as they are on two machines
 * in production: `taskset` pins the embedded server's postmaster (and so every backend it forks)
 * to CPU 0 and each contender to CPU 1. A COPY of this size is bound by its backend, and on a
 * shared pair of CPUs the client's threads (the JIT's and the GC's included) would take turns
 * with it: a round would then measure the scheduler as much as the client. `undefined` when it
 * cannot be done (one CPU, no taskset, a server not started here).
 */
const pinning = async (server: PgServer.PgServer | undefined) => {
  if (server === undefined || cpus().length < 2 || !(await hasOnPath("taskset"))) return undefined
  const postmaster = Number(readFileSync(join(server.dataDir, "postmaster.pid"), "utf8").split("\n")[0])
  const set = (cpuList: string) =>
    runChild("taskset", ["-a", "-p", "-c", cpuList, String(postmaster)], 10_000).then((r) => r.code === 0)
  return {
    pin: () => set("0"),
    unpin: () => set(`0-${cpus().length - 1}`),
    /** The command line of a pinned contender. */
    command: (args: ReadonlyArray<string>): [string, ReadonlyArray<string>] => [
      "taskset",
      ["-c", "1", process.execPath, ...args]
    ]
  }
}
let pinnedCommand: ((args: ReadonlyArray<string>) => [string, ReadonlyArray<string>]) | undefined

/** A contender process's command line (its bundle, then bench/shared.ts `parseArgs`'s arguments). */
const contenderArgs = (url: string, contender: string, workload: string, extra: ReadonlyArray<string>) => [
  ...childEntry[registry[contender]?.entry ?? "effect3"],
  contender,
  workload,
  "--url",
  url,
  ...extra
]

/** A COPY contender served (`--serve`, see bench/shared.ts `serveCopies`): warm, it times a copy each time it is asked. */
interface Served {
  /** Set when the contender cannot run the workload: the process reported it and ended. */
  readonly skipped?: string
  /** Times one copy; fails when the process does not answer (its stderr in the error). */
  readonly copy: () => Promise<Result>
  /** Ends the process (and waits for it). */
  readonly end: () => Promise<void>
}

const serveContender = (
  url: string,
  contender: string,
  workload: string,
  extra: ReadonlyArray<string>
): Promise<Served> =>
  new Promise((resolve, reject) => {
    const args = contenderArgs(url, contender, workload, ["--serve", ...extra])
    const [command, commandArgs] = pinnedCommand?.(args) ?? [process.execPath, args]
    const child = spawn(command, commandArgs, { cwd: root, stdio: ["pipe", "pipe", "pipe"] })
    children.add(child)
    let stderr = ""
    let buffered = ""
    let ready = false
    /** A process that cannot serve reports why (`skipped`) and ends. */
    let reported: string | undefined
    const waiting: Array<{ resolve: (r: Result) => void; reject: (e: Error) => void }> = []
    const failed = () => new Error(`${contender} ${workload} (served) ended: ${stderr.slice(-600)}`)
    const exited = new Promise<void>((done) =>
      child.on("close", () => {
        children.delete(child)
        for (const w of waiting.splice(0)) w.reject(failed())
        if (!ready) {
          const result = reported === undefined ? undefined : JSON.parse(reported.slice("RESULT ".length)) as Result
          if (result?.skipped !== undefined) {
            resolve({ skipped: result.skipped, copy: () => Promise.reject(failed()), end: () => Promise.resolve() })
          } else reject(failed())
        }
        done()
      })
    )
    child.stderr!.on("data", (d) => (stderr += d))
    child.stdout!.on("data", (d) => {
      buffered += d
      let at: number
      while ((at = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, at)
        buffered = buffered.slice(at + 1)
        if (line === "READY" && !ready) {
          ready = true
          resolve({
            copy: () =>
              new Promise<Result>((res, rej) => {
                if (child.exitCode !== null) return rej(failed())
                waiting.push({ resolve: res, reject: rej })
                child.stdin!.write("go\n")
              }),
            end: () => {
              child.stdin!.end("end\n")
              return exited
            }
          })
        } else if (line.startsWith("COPY ")) {
          waiting.shift()?.resolve(JSON.parse(line.slice("COPY ".length)) as Result)
        } else if (!ready && line.startsWith("RESULT ")) {
          reported = line
        }
      }
    })
  })

const runContender = async (
  url: string,
  contender: string,
  workload: string,
  extra: ReadonlyArray<string>,
  timeoutMs: number
): Promise<Result | undefined> => {
  const args = contenderArgs(url, contender, workload, [
    "--ms",
    String(measureMs),
    "--warmup",
    String(warmupMs),
    ...extra
  ])
  // One retry: on a loaded machine a child occasionally dies while loading.
  for (let attempt = 1;; attempt++) {
    const [command, commandArgs] = pinnedCommand?.(args) ?? [process.execPath, args]
    const { code, stderr, stdout } = await runChild(command, commandArgs, timeoutMs)
    const line = stdout.split("\n").reverse().find((l) => l.startsWith("RESULT "))
    if (code === 0 && line !== undefined) return JSON.parse(line.slice("RESULT ".length)) as Result
    console.error(`  ! ${contender} ${workload} ${extra.join(" ")} failed (exit ${code}): ${stderr.slice(-600)}`)
    if (attempt === 2) return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// pgbench (the near-limit reference, C, prepared statements): only when on PATH

const pgbenchScripts: Record<Workload["kind"], string> = {
  select1: "SELECT 1;\n",
  rows100: "SELECT g, g::text, now() FROM generate_series(1,100) g;\n",
  tx3: "\\set a random(1, 1000000)\nBEGIN;\nSELECT 1;\nINSERT INTO bench_ins_pgbench (a, b) VALUES (:a, 'tx');\n" +
    "SELECT :a::int AS i;\nCOMMIT;\n",
  insert: "\\set a random(1, 1000000)\nINSERT INTO bench_ins_pgbench (a, b) VALUES (:a, 'row');\n"
}

const hasOnPath = async (name: string): Promise<boolean> =>
  (await runChild("sh", ["-c", `command -v ${name}`], 5000)).code === 0

const runPgbench = async (url: string, w: Workload): Promise<Result | undefined> => {
  const u = new URL(url)
  const script = join(tmpdir(), `scoped-pool-bench-${w.kind}.sql`)
  writeFileSync(script, pgbenchScripts[w.kind])
  const clients = Math.min(w.concurrency, 10) // pool max 10: at most 10 sessions
  const seconds = Math.max(1, Math.round(measureMs / 1000))
  const timeArgs = ["-f", "%U %S %M", "pgbench", "-n", "-M", "prepared", "-f", script]
  const args = [...timeArgs, "-c", String(clients), "-j", String(Math.min(clients, 2)), "-T", String(seconds)]
  args.push("-h", u.hostname, "-p", u.port || "5432", "-U", decodeURIComponent(u.username))
  args.push(decodeURIComponent(u.pathname.slice(1)) || "postgres")
  const env = { ...process.env, PGPASSWORD: decodeURIComponent(u.password), PGAPPNAME: "bench-pgbench" }
  const { code, stderr, stdout } = await runChild("/usr/bin/time", args, seconds * 1000 + 30_000, env)
  const processed = /number of transactions actually processed: (\d+)/.exec(stdout)
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)
  const time = /^([\d.]+) ([\d.]+) (\d+)$/m.exec(stderr)
  if (code !== 0 || !processed || !tps) {
    console.error(`  ! pgbench ${w.id} failed (exit ${code}): ${stderr.slice(-500)}`)
    return undefined
  }
  const queries = Number(processed[1])
  return {
    contender: "pgbench",
    workload: w.id,
    queries,
    elapsedMs: seconds * 1000,
    qps: Math.round(Number(tps[1])),
    ...(time ? { cpuUsPerQuery: Math.round((Number(time[1]) + Number(time[2])) * 1e6 / queries * 10) / 10 } : {}),
    rssMb: time ? Math.round(Number(time[3]) / 1024 * 10) / 10 : 0,
    note: `${clients} sessions, -M prepared, no warm-up`
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
/** Median where null means "did not finish within the cap" (sorted last). */
const medianNullable = (xs: ReadonlyArray<number | null | undefined>): number | null => {
  const s = xs.map((x) => x ?? Infinity).sort((a, b) => a - b)
  if (s.length === 0) return null
  const m = s[s.length >> 1]!
  return Number.isFinite(m) ? m : null
}
const fmt = (x: number | null | undefined, digits = 0) => x === null || x === undefined ? "—" : x.toFixed(digits)
const capped = (x: number | null | undefined, digits = 1) => x === null ? `> ${capMs} (cap)` : fmt(x, digits)

// ---------------------------------------------------------------------------------------------
// Rows of the report

interface Row {
  readonly contender: string
  readonly workload: string
  readonly qps: number
  readonly ratioToPgPool: number | undefined
  readonly ratioToEffect4: number | undefined
  readonly cpuUsPerQuery: number | undefined
  readonly rssMb: number
  readonly rounds: ReadonlyArray<Result>
}

interface SlowHeadRow {
  readonly contender: string
  readonly baseline: LatencySummary
  readonly slow: LatencySummary
  /** p99 with the slow statement / p99 without (medians of the rounds). */
  readonly p99Ratio: number
  readonly rounds: ReadonlyArray<Result>
}

interface CloseRow {
  readonly contender: string
  readonly variant: string
  readonly busy: number
  readonly closeMs: number | null
  readonly backendsLeft: number
  readonly rounds: ReadonlyArray<{ closeMs: number | null | undefined; backendsLeft: number | undefined }>
}

interface CancelRow {
  readonly contender: string
  readonly cancelMs: number | null
  readonly returnMs: number | null
  readonly rounds: ReadonlyArray<{ cancelMs: number | null | undefined; returnMs: number | null | undefined }>
}

interface CopyRow {
  readonly contender: string
  readonly direction: "load" | "export"
  readonly method: string
  readonly rows: number
  readonly rowsPerSecond: number | undefined
  readonly elapsedMs: number | undefined
  readonly cpuMs: number | undefined
  /** The backend's on-CPU time, when the server runs here. */
  readonly serverCpuMs: number | undefined
  /** What the client adds to the backend's work: elapsed − server CPU, median of the rounds. */
  readonly clientAddsMs: number | undefined
  /** How often the backend blocked in a round (median): 2 is the start and the end of the COPY. */
  readonly serverWaits: number | undefined
  /** CPU time the hypervisor took from the machine in a round (all CPUs, `steal` in /proc/stat), median. */
  readonly stealMs: number | undefined
  readonly rssMb: number | undefined
  readonly skipped?: string
  readonly rounds: ReadonlyArray<Result>
  /**
   * ours-copy only: pg-copy-streams' elapsed ÷ ours in the same pair (the two copies a second
   * apart), median over the pairs, its bootstrap 95 % interval, and in how many pairs ours was the
   * faster. A pair shares the server's speed of that moment, which moves by up to 1.7× from one
   * process to the next here: the paired ratio is the figure that movement blurs least.
   */
  readonly paired?: {
    readonly ratio: number
    readonly low: number
    readonly high: number
    readonly won: number
    readonly of: number
  }
}

type Status = "holds" | "misses" | "not measured"
interface Target {
  readonly issue: string
  readonly target: string
  readonly value: number | null
  readonly unit: string
  /** The figures the value comes from. */
  readonly figures: string
  readonly status: Status
}

/** The code measured: HEAD and whether packages/ had uncommitted changes when the run started. */
const gitState = (): { commit: string; packagesDirty: boolean } => {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "packages"], { cwd: root, encoding: "utf8" }).trim()
    return { commit, packagesDirty: dirty.length > 0 }
  } catch {
    return { commit: "unknown", packagesDirty: false }
  }
}

const main = async () => {
  const started = Date.now()
  const git = gitState()
  mkdirSync(resultsDir, { recursive: true })
  let server: PgServer.PgServer | undefined
  let url = process.env.BENCH_DATABASE_URL
  if (url === undefined) {
    console.log("starting an embedded PostgreSQL…")
    // Its data dir in memory when the machine has a tmpfs: a client benchmark, not a disk one (the
    // COPY rounds write 50 MB each, and the disk's writeback would land on whichever round it hits).
    const memoryDir = "/dev/shm"
    const previousTmp = process.env.TMPDIR
    if (process.env.TMPDIR === undefined && existsSync(memoryDir)) process.env.TMPDIR = memoryDir
    try {
      server = await PgServer.start({ maxConnections: 400, settings: { max_locks_per_transaction: "128" } })
    } finally {
      if (previousTmp === undefined) delete process.env.TMPDIR
    }
    url = server.url
  }
  const admin = new pg.Client({ connectionString: url, application_name: "bench-admin" })
  admin.on("error", () => undefined)
  await admin.connect()
  const version = (await admin.query<{ v: string }>("SELECT current_setting($1) AS v", ["server_version"])).rows[0]!.v
  const terminateBench = () =>
    admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'bench-%' " +
        "AND application_name <> 'bench-admin'"
    )
  const notes: Array<string> = []
  try {
    for (const c of [...Object.keys(registry)]) {
      await admin.query(`DROP TABLE IF EXISTS ${tableOf(c)}; CREATE UNLOGGED TABLE ${tableOf(c)} (a int, b text)`)
    }
    const pgbench = runThroughput && withPgbench && picked("pgbench") && await hasOnPath("pgbench")
    const childMode = await buildChildren()
    console.log(
      `PostgreSQL ${version}${server ? " (embedded)" : ""}; node ${process.version}; ${cpus().length} CPUs; ` +
        `${rounds} round(s) × ${measureMs} ms (+${warmupMs} ms warm-up)${
          pgbench ? "; pgbench on PATH" : "; pgbench skipped"
        }; sections: ${
          [
            runThroughput && "throughput",
            runSlowHead && "slowhead",
            runLifecycle && "lifecycle",
            runCopy && "copy"
          ].filter(Boolean).join(", ")
        }`
    )
    {
      // A rough forecast (child start-up ~0.6 s; lifecycle ~3.5 s a child), so nobody is surprised.
      const tp = runThroughput ? workloads.length * rounds * throughputContenders.length : 0
      const pgb = pgbench ? workloads.length * rounds : 0
      const sh = runSlowHead ? slowHeadContenders.length * lifecycleRounds : 0
      const lc = runLifecycle ? (quick ? 8 : 52) : 0
      const seconds = tp * (Math.max(warmupMs, 1000) + measureMs + 600) / 1000 +
        pgb * (Math.round(measureMs / 1000) + 0.3) +
        sh * (Math.max(1000, warmupMs) + 4600) / 1000 + lc * 3.5 +
        (runCopy ? copyRounds * copyRows / 80_000 + copyPairs * copyRows / 400_000 : 0)
      console.log(`expected duration: ~${Math.max(1, Math.round(seconds / 60))} min`)
    }
    const note = (c: string, result: Result | undefined) => {
      const text = result?.note
      if (c === "ours-sql-nopipe" && text !== undefined && !notes.some((n) => n.startsWith("ours-sql-nopipe"))) {
        notes.push(`ours-sql-nopipe: ${text}`)
      }
    }

    // Throughput: for each workload, interleaved rounds A B C D E A B C D E …
    const all: Array<Row> = []
    const names: Array<string> = [...throughputContenders, ...(pgbench ? ["pgbench"] : [])]
    if (runThroughput) {
      const childCap = warmupMs * 2 + measureMs * 2 + 30_000
      for (const w of workloads) {
        const perContender = new Map<string, Array<Result>>()
        for (let r = 0; r < rounds; r++) {
          for (const c of names) {
            const result = c === "pgbench"
              ? await runPgbench(url, w)
              : await runContender(url, c, w.kind, ["--concurrency", String(w.concurrency)], childCap)
            note(c, result)
            if (result !== undefined) perContender.set(c, [...(perContender.get(c) ?? []), result])
          }
        }
        const medianQps = (c: string) => median((perContender.get(c) ?? []).map((x) => x.qps!))
        const base = medianQps("pg-pool")
        const e4 = medianQps("effect4")
        const line: Array<string> = []
        for (const c of names) {
          const rs = perContender.get(c) ?? []
          if (rs.length === 0) continue
          const qps = medianQps(c)
          const cpu = rs.every((x) => x.cpuUsPerQuery !== undefined)
            ? median(rs.map((x) => x.cpuUsPerQuery!))
            : undefined
          all.push({
            contender: c,
            workload: w.id,
            qps,
            ratioToPgPool: base > 0 ? qps / base : undefined,
            ratioToEffect4: e4 > 0 ? qps / e4 : undefined,
            cpuUsPerQuery: cpu,
            rssMb: median(rs.map((x) => x.rssMb)),
            rounds: rs
          })
          line.push(`${c} ${qps}${base > 0 ? ` (${(qps / base).toFixed(2)}×)` : ""}`)
        }
        console.log(`${w.label.padEnd(16)} ${line.join("  ")}`)
      }
    }

    // Slow head (issue 12 line 4): interleaved rounds, medians of p50 / p99
    const slowHead: Array<SlowHeadRow> = []
    if (runSlowHead) {
      const perContender = new Map<string, Array<Result>>()
      for (let r = 0; r < lifecycleRounds; r++) {
        for (const c of slowHeadContenders) {
          const result = await runContender(url, c, "slowhead", [], 60_000)
          await terminateBench()
          note(c, result)
          if (result?.baseline && result.slow) perContender.set(c, [...(perContender.get(c) ?? []), result])
        }
      }
      const summarize = (xs: ReadonlyArray<LatencySummary>): LatencySummary => ({
        count: median(xs.map((x) => x.count)),
        p50Ms: median(xs.map((x) => x.p50Ms)),
        p99Ms: median(xs.map((x) => x.p99Ms)),
        p999Ms: median(xs.map((x) => x.p999Ms)),
        maxMs: Math.max(...xs.map((x) => x.maxMs)),
        over1s: Math.max(...xs.map((x) => x.over1s))
      })
      for (const [c, rs] of perContender) {
        const baseline = summarize(rs.map((x) => x.baseline!))
        const slow = summarize(rs.map((x) => x.slow!))
        const row = { contender: c, baseline, slow, p99Ratio: slow.p99Ms / baseline.p99Ms, rounds: rs }
        slowHead.push(row)
        console.log(
          `slow head ${c.padEnd(16)} SELECT 1 p50/p99 ${fmt(baseline.p50Ms, 1)}/${fmt(baseline.p99Ms, 1)} ms → ` +
            `${fmt(slow.p50Ms, 1)}/${fmt(slow.p99Ms, 1)} ms with pg_sleep(2) (p99 ×${
              fmt(row.p99Ratio, 2)
            }; ${slow.over1s} waited > 1 s)`
        )
      }
    }

    // Lifecycle
    const close: Array<CloseRow> = []
    const cancel: Array<CancelRow> = []
    if (runLifecycle) {
      // Ours and Effect 4 (which finish well within the cap): every round; the peers that hit
      // the cap or leave backends behind: one round.
      const full = (sizes: ReadonlyArray<number>) => quick ? [] : sizes
      // Effect 4: every round at 100 busy (the target's size), one round at 10 and 50.
      const variants: Array<{ c: string; kind: string; sizes: ReadonlyArray<number>; rounds: number }> = [
        { c: "ours-sql", kind: "close", sizes: closeSizes, rounds: lifecycleRounds },
        { c: "ours-sql", kind: "close-daemon", sizes: full(closeSizes), rounds: lifecycleRounds },
        { c: "effect4", kind: "close", sizes: [100], rounds: lifecycleRounds },
        { c: "effect4", kind: "close", sizes: full([10, 50]), rounds: 1 },
        { c: "effect4", kind: "close-daemon", sizes: full([100]), rounds: 1 },
        { c: "effect4-mux", kind: "close", sizes: [100], rounds: lifecycleRounds },
        { c: "effect4-mux", kind: "close", sizes: full([10, 50]), rounds: 1 },
        { c: "effect4-mux", kind: "close-shared", sizes: full([100]), rounds: 1 },
        { c: "effect-sql-pg", kind: "close", sizes: closeSizes, rounds: 1 },
        { c: "effect-sql-pg", kind: "close-daemon", sizes: full([100]), rounds: 1 },
        { c: "pg-pool", kind: "close", sizes: closeSizes, rounds: 1 },
        { c: "postgres-js", kind: "close", sizes: full(closeSizes), rounds: 1 }
      ].filter((v) => picked(v.c))
      for (const size of closeSizes) {
        const perVariant = new Map<string, Array<Result>>()
        for (let r = 0; r < lifecycleRounds; r++) {
          for (const { c, kind, rounds: vr, sizes } of variants) {
            if (!sizes.includes(size) || r >= vr) continue
            const result = await runContender(url, c, kind, ["--n", String(size), "--cap", String(capMs)], 60_000)
            await terminateBench()
            if (result !== undefined) {
              perVariant.set(`${c}|${kind}`, [...(perVariant.get(`${c}|${kind}`) ?? []), result])
            }
          }
        }
        for (const [key, rs] of perVariant) {
          const [c, kind] = key.split("|") as [string, string]
          const row: CloseRow = {
            contender: c,
            variant: kind,
            busy: size,
            closeMs: medianNullable(rs.map((x) => x.closeMs)),
            backendsLeft: Math.max(...rs.map((x) => x.backendsLeft ?? 0)),
            rounds: rs.map((x) => ({ closeMs: x.closeMs, backendsLeft: x.backendsLeft }))
          }
          close.push(row)
          console.log(
            `close ${String(size).padStart(3)} busy  ${c.padEnd(14)} ${kind.padEnd(12)} ${
              row.closeMs === null ? `> ${capMs} ms (cap)` : `${fmt(row.closeMs, 1)} ms`
            }, ${row.backendsLeft} backend(s) left after 1 s`
          )
        }
      }
      const cancelContenders = (quick
        ? ["ours-sql", "effect4", "effect4-mux", "effect-sql-pg"]
        : ["ours-sql", "ours-raw", "effect4", "effect4-mux", "effect-sql-pg"]).filter(picked)
      // Peers whose cancel is known not to reach the server within the cap: one round.
      const oneRound = new Set(["effect-sql-pg", "effect4-mux"])
      for (const c of cancelContenders) {
        const rs: Array<Result> = []
        for (let r = 0; r < (oneRound.has(c) ? 1 : lifecycleRounds); r++) {
          const result = await runContender(url, c, "cancel", ["--cap", String(capMs)], 60_000)
          await terminateBench()
          if (result !== undefined) rs.push(result)
        }
        const row: CancelRow = {
          contender: c,
          cancelMs: medianNullable(rs.map((x) => x.cancelMs)),
          returnMs: medianNullable(rs.map((x) => x.returnMs)),
          rounds: rs.map((x) => ({ cancelMs: x.cancelMs, returnMs: x.returnMs }))
        }
        cancel.push(row)
        console.log(
          `cancel (pool exhausted) ${c.padEnd(14)} backend stopped ${
            row.cancelMs === null ? `> ${capMs} ms (cap)` : `${fmt(row.cancelMs, 1)} ms`
          } after the timeout; caller resumed ${
            row.returnMs === null ? `> ${capMs} ms (cap)` : `${fmt(row.returnMs, 1)} ms`
          }`
        )
      }
    }

    // COPY (issue 17 line 5): 1,000,000 rows × 3 columns, loaded and exported
    const copy: Array<CopyRow> = []
    if (runCopy) {
      const copyVariants: ReadonlyArray<
        { c: string; workload: string; direction: "load" | "export"; method: string; args?: ReadonlyArray<string> }
      > = [
        { c: "ours-sql", workload: "copy-insert", direction: "load", method: "multi-row INSERT via SqlClient" },
        { c: "pg-copy-streams", workload: "copy-from", direction: "load", method: "COPY FROM STDIN" },
        { c: "ours-copy", workload: "copy-from", direction: "load", method: "COPY FROM STDIN (copyFrom)" },
        { c: "pg-copy-streams", workload: "copy-to", direction: "export", method: "COPY TO STDOUT" },
        { c: "ours-copy", workload: "copy-to", direction: "export", method: "COPY TO STDOUT (copyTo)" },
        // The same without read batching: what batching itself changes, side by side.
        {
          c: "ours-copy",
          workload: "copy-to",
          direction: "export",
          method: "COPY TO STDOUT (copyTo, readBatch 0)",
          args: ["--read-batch", "0"]
        }
      ]
      const keyOf = (v: (typeof copyVariants)[number]) => `${v.c}|${v.workload}${v.args ? `|${v.args.join(" ")}` : ""}`
      const perVariant = new Map<string, Array<Result>>()
      /** Each variant's result by round, to pair ours with pg-copy-streams round by round. */
      const byRound = new Map<string, Map<number, Result>>()
      const skipped = new Map<string, string>()
      const record = (key: string, round: number, result: Result | undefined) => {
        if (result?.skipped !== undefined) skipped.set(key, result.skipped)
        else if (result !== undefined) {
          perVariant.set(key, [...(perVariant.get(key) ?? []), result])
          byRound.set(key, (byRound.get(key) ?? new Map<number, Result>()).set(round, result))
        }
      }
      const runCopyRounds = async () => {
        // The INSERT path: a process a round (it is 10× apart from the COPYs).
        for (const v of copyVariants.filter((x) => x.workload === "copy-insert")) {
          for (let r = 0; r < copyRounds; r++) {
            record(keyOf(v), r, await runContender(url, v.c, v.workload, ["--rows", String(copyRows)], 600_000))
          }
        }
        // The COPYs: the contenders of a direction served at once, asked for a copy in turn
        // (every other turn in the reverse order): a pair is two copies a second apart.
        for (const workload of ["copy-from", "copy-to"]) {
          const variants = copyVariants.filter((x) => x.workload === workload)
          const served: Array<readonly [(typeof variants)[number], Served]> = []
          try {
            for (const v of variants) {
              const s = await serveContender(url, v.c, v.workload, ["--rows", String(copyRows), ...(v.args ?? [])])
              if (s.skipped !== undefined) skipped.set(keyOf(v), s.skipped)
              else served.push([v, s])
            }
            for (let r = 0; r < copyPairs; r++) {
              for (const [v, s] of r % 2 === 0 ? served : [...served].reverse()) record(keyOf(v), r, await s.copy())
            }
          } finally {
            await Promise.all(served.map(([, s]) => s.end()))
          }
        }
      }
      const pins = await pinning(server)
      if (pins !== undefined && await pins.pin()) {
        pinnedCommand = pins.command
        notes.push("COPY: the server on CPU 0, each contender on CPU 1 (taskset)")
      } else {
        notes.push("COPY: server and contenders share the CPUs (no taskset, one CPU, or a server not started here)")
      }
      try {
        await runCopyRounds()
      } finally {
        pinnedCommand = undefined
        await pins?.unpin()
      }
      for (const v of copyVariants) {
        const key = keyOf(v)
        const rs = perVariant.get(key) ?? []
        const skip = skipped.get(key)
        const m = (f: (r: Result) => number | undefined) => rs.length ? median(rs.map((x) => f(x) ?? 0)) : undefined
        const theirs = byRound.get(`pg-copy-streams|${v.workload}`)
        const pairs = v.c === "ours-copy" && theirs !== undefined
          ? [...(byRound.get(key) ?? new Map<number, Result>())].flatMap(([r, x]) => {
            const t = theirs.get(r)
            return t?.elapsedMs !== undefined && x.elapsedMs ? [t.elapsedMs / x.elapsedMs] : []
          })
          : []
        const row: CopyRow = {
          contender: v.c,
          direction: v.direction,
          method: v.method,
          rows: copyRows,
          rowsPerSecond: m((x) => x.qps),
          elapsedMs: m((x) => x.elapsedMs),
          cpuMs: m((x) => x.cpuMs),
          serverCpuMs: rs.every((x) => x.serverCpuMs !== undefined) ? m((x) => x.serverCpuMs) : undefined,
          clientAddsMs: rs.every((x) => x.serverCpuMs !== undefined)
            ? m((x) => (x.elapsedMs ?? 0) - (x.serverCpuMs ?? 0))
            : undefined,
          serverWaits: rs.every((x) => x.serverWaits !== undefined) ? m((x) => x.serverWaits) : undefined,
          stealMs: rs.every((x) => x.stealMs !== undefined) ? m((x) => x.stealMs) : undefined,
          rssMb: m((x) => x.rssMb),
          ...(skip !== undefined ? { skipped: skip } : {}),
          rounds: rs,
          ...(pairs.length > 0
            ? {
              paired: {
                ratio: median(pairs),
                ...((([low, high]) => ({ low, high }))(medianInterval(pairs))),
                won: pairs.filter((x) => x > 1).length,
                of: pairs.length
              }
            }
            : {})
        }
        copy.push(row)
        console.log(
          `copy ${v.direction.padEnd(6)} ${(v.c + (v.args ? ` ${v.args.join(" ")}` : "")).padEnd(16)} ${
            skip ?? (rs.length === 0
              ? "failed"
              : `${fmt(row.rowsPerSecond)} rows/s (${fmt(row.elapsedMs)} ms, CPU ${fmt(row.cpuMs)} ms, server CPU ${
                fmt(row.serverCpuMs)
              } ms, client adds ${fmt(row.clientAddsMs)} ms${
                row.paired
                  ? `; × pg-copy-streams pair by pair ${fmt(row.paired.ratio, 3)} (${fmt(row.paired.low, 3)}–${
                    fmt(row.paired.high, 3)
                  }), faster in ${row.paired.won}/${row.paired.of}`
                  : ""
              })`)
          }`
        )
      }
      for (const c of Object.keys(registry)) {
        await admin.query(`DROP TABLE IF EXISTS ${copyTable(c)}`)
      }
    }

    // Core checkout + return: bench/core.ts results when present, else a simple loop
    let core: Record<string, unknown> = {}
    if (runThroughput) {
      const coreJson = join(resultsDir, "core.json")
      if (existsSync(coreJson)) {
        const parsed = JSON.parse(readFileSync(coreJson, "utf8")) as {
          date: string
          results: Record<string, Record<string, { median: number }>>
        }
        core = {
          source: "bench/results/core.json (bench/core.ts)",
          date: parsed.date,
          nsPerLeaseIdle: Object.fromEntries(Object.entries(parsed.results).map(([k, v]) => [k, v["0"]?.median]))
        }
      } else {
        const r = await runContender(url, "core", "checkout", [], 120_000)
        core = {
          source: "bench/contender.ts core checkout (simple loop)",
          nsPerLeaseIdle: r ? JSON.parse(r.note!) : {}
        }
      }
      console.log(`core checkout + return (ns, idle pool): ${JSON.stringify(core.nsPerLeaseIdle)}`)
    }

    const targets = evaluateTargets(all, slowHead, close, cancel, copy, { runThroughput, runSlowHead, runLifecycle })
    console.log(
      `\ntargets (${rounds >= 3 ? `median of ${rounds} rounds` : `${rounds} round(s): indicative only`}${
        runCopy ? `; COPY: median of ${copyPairs} pairs` : ""
      }):`
    )
    for (const t of targets) {
      console.log(
        `  ${t.status === "holds" ? "holds " : t.status === "misses" ? "MISSES" : "n/m   "}  ${t.target}: ${
          t.value === null ? "—" : `${t.value}${t.unit}`
        }  (${t.figures})`
      )
    }

    // Outputs
    const meta = {
      date: new Date().toISOString(),
      mode: quick ? "quick" : "full",
      rounds,
      measureMs,
      warmupMs,
      postgres: version,
      server: server ? "embedded" : "BENCH_DATABASE_URL",
      node: process.version,
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      poolMax: 10,
      pgbench: pgbench ? "on PATH" : runThroughput ? "not on PATH or disabled (skipped)" : "not run",
      children: childMode,
      sections: { throughput: runThroughput, slowhead: runSlowHead, lifecycle: runLifecycle, copy: runCopy },
      ...(runCopy ? { copyRows, copyRounds, copyPairs } : {}),
      notes,
      commit: git.commit,
      packagesDirty: git.packagesDirty,
      durationSeconds: Math.round((Date.now() - started) / 1000)
    }
    writeFileSync(
      join(resultsDir, "latest.json"),
      JSON.stringify({ meta, throughput: all, slowHead, close, cancel, copy, core, targets }, null, 2) + "\n"
    )
    const row = (c: string, w: string) => all.find((x) => x.contender === c && x.workload === w)
    if (runThroughput) {
      writeFileSync(
        join(resultsDir, "chart.svg"),
        renderChart({
          title: "scoped-pool vs peers: throughput as a ratio to pg-pool (higher is better)",
          subtitle:
            `pool max 10, PostgreSQL ${version}, node ${process.version}, ${cpus().length} CPUs, median of ${rounds} round(s) × ${
              measureMs / 1000
            } s, ${meta.date.slice(0, 10)}`,
          series: names.map((n) => ({ name: label(n), color: registry[n]?.color ?? "#999" })),
          groups: workloads.map((w) => ({
            label: w.label,
            values: Object.fromEntries(names.map((n) => [label(n), row(n, w.id)?.ratioToPgPool]))
          })),
          cap: 3
        })
      )
    }
    writeFileSync(
      join(resultsDir, "latest.md"),
      renderMarkdown(meta, all, slowHead, close, cancel, copy, core, targets)
    )
    console.log(
      `\nwrote bench/results/latest.json, latest.md${runThroughput ? ", chart.svg" : ""} in ${meta.durationSeconds} s`
    )
  } finally {
    await terminateBench().catch(() => undefined)
    await admin.end().catch(() => undefined)
    killChildren()
    await server?.stop()
  }
}

// ---------------------------------------------------------------------------------------------
// Targets: issue 12 line 6 (the wire client), issue 12 line 4 (slow head), issue 13 line 5
// (SqlClient vs raw), issue 17 line 5 (COPY). Each is evaluated from this run alone.

const evaluateTargets = (
  all: ReadonlyArray<Row>,
  slowHead: ReadonlyArray<SlowHeadRow>,
  close: ReadonlyArray<CloseRow>,
  cancel: ReadonlyArray<CancelRow>,
  copy: ReadonlyArray<CopyRow>,
  ran: { readonly runThroughput: boolean; readonly runSlowHead: boolean; readonly runLifecycle: boolean }
): Array<Target> => {
  const row = (c: string, w: string) => all.find((x) => x.contender === c && x.workload === w)
  const r2 = (x: number) => Math.round(x * 100) / 100
  /** A value of `null` means "did not finish within the cap" (misses); `undefined`, not measured. */
  const target = (
    issue: string,
    name: string,
    value: number | null | undefined,
    holds: (v: number) => boolean,
    unit: string,
    figures: string
  ): Target => ({
    issue,
    target: name,
    value: value === undefined || value === null ? null : r2(value),
    unit,
    figures,
    status: value === undefined ? "not measured" : value !== null && holds(value) ? "holds" : "misses"
  })
  const qps = (c: string, w: string) => row(c, w)?.qps
  const q = (c: string, w: string) => `${c} ${fmt(qps(c, w))} qps`
  /** ours-sql against one contender (or the faster of several) on a workload. */
  const versus = (issue: string, w: string, against: ReadonlyArray<string>, min: number, name: string): Target => {
    const ours = qps("ours-sql", w)
    const best = against.map((c) => ({ c, qps: qps(c, w) })).filter((x) => x.qps !== undefined)
      .sort((a, b) => b.qps! - a.qps!)[0]
    return target(
      issue,
      name,
      ours !== undefined && best !== undefined ? ours / best.qps! : undefined,
      (v) => v >= min,
      "×",
      `${q("ours-sql", w)} / ${best ? q(best.c, w) : "—"}`
    )
  }
  const effect4s = ["effect4", "effect4-mux"]
  const out: Array<Target> = []
  if (ran.runThroughput) {
    out.push(
      versus("12.6", "select1-c10", ["effect4"], 1.2, "SqlClient SELECT 1 ×10 ≥ 1.2× Effect 4 defaults"),
      versus("12.6", "select1-c100", ["effect4-mux"], 1.1, "SqlClient SELECT 1 ×100 ≥ 1.1× Effect 4 multiplex"),
      versus("12.6", "rows100-c10", effect4s, 1.2, "SqlClient 100 rows ×10 ≥ 1.2× Effect 4 (the faster of the two)"),
      versus("12.6", "insert-c10", effect4s, 1.2, "SqlClient insert ×10 ≥ 1.2× Effect 4 (the faster of the two)")
    )
    const raw = qps("ours-raw", "select1-c100")
    const pgb = qps("pgbench", "select1-c100")
    out.push(
      target(
        "12.6",
        "raw SELECT 1 ×100 ≥ 0.8× pgbench -M prepared",
        raw !== undefined && pgb !== undefined ? raw / pgb : undefined,
        (v) => v >= 0.8,
        "×",
        `${q("ours-raw", "select1-c100")} / ${q("pgbench", "select1-c100")}`
      )
    )
    const cpuRaw = row("ours-raw", "select1-c10")?.cpuUsPerQuery
    out.push(
      target(
        "12.6",
        "client CPU per SELECT 1 at ×10 (raw API) ≤ 12 µs",
        cpuRaw,
        (v) => v <= 12,
        " µs",
        `raw ${fmt(cpuRaw, 1)} µs, SqlClient ${fmt(row("ours-sql", "select1-c10")?.cpuUsPerQuery, 1)} µs`
      )
    )
    // Peak RSS: the worst workload, ours (SqlClient and raw) against the leaner Effect 4 contender.
    const rss = workloads.flatMap((w) => {
      const oursRss = ["ours-sql", "ours-raw"].map((c) => row(c, w.id)?.rssMb).filter((x) => x !== undefined)
      const e4Rss = effect4s.map((c) => row(c, w.id)?.rssMb).filter((x) => x !== undefined)
      return oursRss.length && e4Rss.length
        ? [{ w: w.id, ours: Math.max(...oursRss), e4: Math.min(...e4Rss) }]
        : []
    }).sort((a, b) => b.ours / b.e4 - a.ours / a.e4)
    const worst = rss[0]
    out.push(
      target(
        "12.6",
        "peak RSS ≤ Effect 4's (worst workload)",
        worst ? worst.ours / worst.e4 : undefined,
        (v) => v <= 1,
        "×",
        worst ? `${worst.w}: ours ${fmt(worst.ours, 1)} MB / Effect 4 ${fmt(worst.e4, 1)} MB` : "—"
      )
    )
  }
  if (ran.runLifecycle) {
    const c100 = close.find((x) => x.contender === "ours-sql" && x.variant === "close" && x.busy === 100)
    out.push(
      target(
        "12.6",
        "close of 100 busy ≤ 100 ms with 0 backends left",
        c100?.closeMs,
        (v) => v <= 100 && c100!.backendsLeft === 0,
        " ms",
        c100 ? `${capped(c100.closeMs)} ms, ${c100.backendsLeft} backend(s) left` : "—"
      )
    )
    for (const c of ["ours-sql", "ours-raw"]) {
      const x = cancel.find((y) => y.contender === c)
      if (x === undefined) continue
      out.push(
        target(
          "12.6",
          `cancel ≤ 20 ms from the deadline to the backend stopped (${c})`,
          x.cancelMs,
          (v) => v <= 20,
          " ms",
          `backend stopped ${capped(x.cancelMs)} ms, caller resumed ${capped(x.returnMs)} ms after the deadline`
        )
      )
    }
  }
  if (ran.runThroughput) {
    const s = qps("ours-sql", "select1-c10")
    const raw = qps("ours-raw", "select1-c10")
    out.push(
      target(
        "13.5",
        "SqlClient within 10 % of the raw API on SELECT 1 ×10",
        s !== undefined && raw !== undefined ? s / raw : undefined,
        (v) => v >= 0.9,
        "×",
        `${q("ours-sql", "select1-c10")} / ${q("ours-raw", "select1-c10")}`
      )
    )
  }
  if (ran.runSlowHead) {
    const x = slowHead.find((y) => y.contender === "ours-sql")
    out.push(
      target(
        "12.4",
        "slow head: SELECT 1 p99 with one pg_sleep(2) ≤ 3× its p99 without (SqlClient, 99 fibers, pool 10)",
        x?.p99Ratio,
        (v) => v <= 3,
        "×",
        x ? `p99 ${fmt(x.slow.p99Ms, 1)} ms with / ${fmt(x.baseline.p99Ms, 1)} ms without` : "—"
      )
    )
  }
  if (copy.length > 0) {
    const find = (c: string, d: "load" | "export") => copy.find((x) => x.contender === c && x.direction === d)
    const ours = (d: "load" | "export") => find("ours-copy", d)
    const figures = (a: CopyRow | undefined, b: CopyRow | undefined) =>
      a?.skipped ?? `${fmt(a?.rowsPerSecond)} / ${fmt(b?.rowsPerSecond)} rows/s`
    const ratio = (a: CopyRow | undefined, b: CopyRow | undefined) =>
      a?.rowsPerSecond !== undefined && b?.rowsPerSecond ? a.rowsPerSecond / b.rowsPerSecond : undefined
    /** Against pg-copy-streams: the median of the pair-by-pair ratios (see CopyRow.paired). */
    const paired = (a: CopyRow | undefined) => a?.paired?.ratio
    const pairedFigures = (a: CopyRow | undefined, b: CopyRow | undefined) =>
      a?.skipped ??
        `pair by pair ${fmt(a?.paired?.ratio, 3)} (median of ${a?.paired?.of ?? 0}, 95 % ${fmt(a?.paired?.low, 3)}–${
          fmt(a?.paired?.high, 3)
        }; faster in ${a?.paired?.won ?? 0}); medians ${figures(a, b)} (${fmt(ratio(a, b), 2)}×)`
    const load = ours("load")
    const exp = ours("export")
    out.push(
      target(
        "17.5",
        "copyFrom ≥ 1.0× pg-copy-streams (load)",
        paired(load),
        (v) => v >= 1,
        "×",
        pairedFigures(load, find("pg-copy-streams", "load"))
      ),
      target(
        "17.5",
        "copyTo ≥ 1.0× pg-copy-streams (export)",
        paired(exp),
        (v) => v >= 1,
        "×",
        pairedFigures(exp, find("pg-copy-streams", "export"))
      ),
      target(
        "17.5",
        "copyFrom ≥ 5× multi-row INSERT via SqlClient",
        ratio(load, find("ours-sql", "load")),
        (v) => v >= 5,
        "×",
        figures(load, find("ours-sql", "load"))
      )
    )
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// bench/results/latest.md

const renderMarkdown = (
  meta: Record<string, unknown> & { readonly notes: ReadonlyArray<string> },
  all: ReadonlyArray<Row>,
  slowHead: ReadonlyArray<SlowHeadRow>,
  close: ReadonlyArray<CloseRow>,
  cancel: ReadonlyArray<CancelRow>,
  copy: ReadonlyArray<CopyRow>,
  core: Record<string, unknown>,
  targets: ReadonlyArray<Target>
): string => {
  const md: Array<string> = [
    `# Latest results (${meta.mode}, ${meta.date})`,
    "",
    `Code: ${meta.commit}${meta.packagesDirty ? " + uncommitted changes in packages/" : ""}. ` +
    `PostgreSQL ${meta.postgres} (${meta.server}), node ${meta.node}, ${meta.cpus}× ${meta.cpu}; pool max 10; ` +
    `median of ${meta.rounds} round(s) × ${meta.measureMs} ms after ${meta.warmupMs} ms warm-up; pgbench ${meta.pgbench}.`,
    ...(meta.mode === "quick"
      ? ["", "**Quick mode: one short round — a smoke test and a trend line, not a result. Quote full runs only.**"]
      : []),
    ...meta.notes.map((n) => `\nNote: ${n}.`),
    ""
  ]
  const status = (s: Status) => s === "holds" ? "holds" : s === "misses" ? "**misses**" : "not measured"
  md.push(
    "## Targets",
    "",
    `Evaluated from this run alone (${
      Number(meta.rounds) >= 3 ? `medians of ${meta.rounds} interleaved rounds` : "fewer than 3 rounds: indicative only"
    }); see bench/README.md for how each is computed.`,
    "",
    "| issue | target | value | figures | status |",
    "|---|---|---:|---|---|",
    ...targets.map((t) =>
      `| ${t.issue} | ${t.target} | ${t.value === null ? "—" : `${t.value}${t.unit}`} | ${t.figures} | ${
        status(t.status)
      } |`
    ),
    ""
  )
  if (all.length > 0) {
    md.push(
      "## Throughput",
      "",
      "| workload | contender | qps | × pg-pool | × Effect 4 | CPU µs/query | peak RSS MB |",
      "|---|---|---:|---:|---:|---:|---:|",
      ...all.map((r) =>
        `| ${r.workload} | ${label(r.contender)} | ${r.qps} | ${fmt(r.ratioToPgPool, 2)} | ${
          fmt(r.ratioToEffect4, 2)
        } | ${fmt(r.cpuUsPerQuery, 1)} | ${fmt(r.rssMb, 1)} |`
      ),
      ""
    )
  }
  if (slowHead.length > 0) {
    md.push(
      "## Slow head",
      "",
      "Pool of 10 through `SqlClient` (postgres.js: its tagged template), 99 fibers running `SELECT 1` back to back; " +
        "then a 100th runs `SELECT pg_sleep(2)`. Latency of every `SELECT 1` started in each window, ms.",
      "",
      "| contender | p50 without | p99 without | p50 with | p99 with | p99.9 with | max with | > 1 s with | p99 with / without |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...slowHead.map((r) =>
        `| ${label(r.contender)} | ${fmt(r.baseline.p50Ms, 2)} | ${fmt(r.baseline.p99Ms, 2)} | ${
          fmt(r.slow.p50Ms, 2)
        } | ${fmt(r.slow.p99Ms, 2)} | ${fmt(r.slow.p999Ms, 2)} | ${fmt(r.slow.maxMs, 0)} | ${r.slow.over1s} | ${
          fmt(r.p99Ratio, 2)
        } |`
      ),
      ""
    )
  }
  if (close.length > 0 || cancel.length > 0) {
    md.push(
      "## Lifecycle",
      "",
      "| close | busy | contender | close ms | backends left after 1 s |",
      "|---|---:|---|---:|---:|",
      ...close.map((r) =>
        `| ${r.variant} | ${r.busy} | ${label(r.contender)} | ${capped(r.closeMs)} | ${r.backendsLeft} |`
      ),
      "",
      "| cancel (pool exhausted, timeout 300 ms) | backend stopped, ms after the deadline | caller resumed, ms |",
      "|---|---:|---:|",
      ...cancel.map((r) => `| ${label(r.contender)} | ${capped(r.cancelMs)} | ${capped(r.returnMs)} |`),
      ""
    )
  }
  if (copy.length > 0) {
    const base = (d: string) => copy.find((x) => x.contender === "pg-copy-streams" && x.direction === d)?.rowsPerSecond
    md.push(
      "## COPY",
      "",
      `${copy[0]!.rows.toLocaleString("en-US")} rows × 3 columns (int, text, float8), one connection. The ` +
        `contenders of a direction run at once, each in its own process, warm, and are asked for a copy in turn: ${
          meta.copyPairs ?? "?"
        } copies each, every other turn in the reverse order, so that a pair is two clients' copies a second ` +
        "apart, at the server's speed of that moment (a load empties its table before each). A load's input " +
        `is made before the clock starts, and each contender's connection is made before it too; the INSERT ` +
        `path runs ${meta.copyRounds ?? meta.rounds} times, a process each.`,
      "",
      "The backend's on-CPU time (`server CPU`, from /proc, when the server runs here) is most of each " +
        "round: `client adds` is elapsed − server CPU (median of the rounds), what the client costs on top of " +
        "the server's work, a figure the server's speed from round to round does not move; `server waits` is " +
        "how often the backend blocked in a round (voluntary context switches, median): about 2 — the start " +
        "and the end — means it never waited for the client in between. `steal ms` is the CPU time the " +
        "hypervisor took from the machine in a round (all CPUs, `steal` in /proc/stat, median): time the " +
        "backend was ready and could not run.",
      "",
      "`× pg-copy-streams` is the ratio of the medians; `pair by pair` is the median of the pairs' own " +
        "ratios (pg-copy-streams' time ÷ ours, the two copies a second apart), its bootstrap 95 % interval, " +
        "and in how many pairs ours was the faster: the figure the targets take.",
      "",
      "| direction | contender | method | rows/s | × pg-copy-streams | pair by pair (95 %; won) | ms | server CPU ms | client adds ms | server waits | steal ms | client CPU ms | peak RSS MB | ms, each copy |",
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
      ...copy.map((r) => {
        const b = base(r.direction)
        return r.skipped !== undefined
          ? `| ${r.direction} | ${
            label(r.contender)
          } | ${r.method} | — | — | — | — | — | — | — | — | — | — (${r.skipped}) | |`
          : `| ${r.direction} | ${label(r.contender)} | ${r.method} | ${fmt(r.rowsPerSecond)} | ${
            r.rowsPerSecond !== undefined && b ? fmt(r.rowsPerSecond / b, 2) : "—"
          } | ${
            r.paired
              ? `${fmt(r.paired.ratio, 3)} (${fmt(r.paired.low, 3)}–${
                fmt(r.paired.high, 3)
              }; ${r.paired.won}/${r.paired.of})`
              : "—"
          } | ${fmt(r.elapsedMs)} | ${fmt(r.serverCpuMs)} | ${fmt(r.clientAddsMs)} | ${fmt(r.serverWaits)} | ${
            fmt(r.stealMs)
          } | ${fmt(r.cpuMs)} | ${fmt(r.rssMb, 1)} | ${r.rounds.map((x) => fmt(x.elapsedMs)).join(", ")} |`
      }),
      ""
    )
  }
  if (core.nsPerLeaseIdle !== undefined) {
    md.push(
      `Core checkout + return, ns per lease (idle pool), from ${core.source}: \`${
        JSON.stringify(core.nsPerLeaseIdle)
      }\``,
      ""
    )
  }
  return md.join("\n")
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
