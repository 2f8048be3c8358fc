/**
 * Benchmarks side by side with the peers, as ratios to pg-pool measured in the same run.
 *
 *   pnpm bench            full run (3 rounds × 3 s per contender and workload; ~10 min on 2 cores)
 *   pnpm bench --quick    everyday run (1 round × 1 s; under 2 min)
 *   options: --rounds N, --ms N (measured window), --warmup N, --no-lifecycle, --no-pgbench
 *
 * Starts one embedded PostgreSQL (or uses BENCH_DATABASE_URL), then forks `bench/contender.ts`
 * once per contender × workload × round, in interleaved rounds (A B C D E A B C D E …), and
 * takes medians. Writes bench/results/latest.json, latest.md and chart.svg. See bench/README.md.
 */
import * as PgServer from "@scoped-pool/test/PgServer"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { cpus, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { renderChart } from "./chart.js"
import type { Result } from "./contender.js"
import pg from "./pg.js"

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
const rounds = opt("rounds", quick ? 1 : 3)
const measureMs = opt("ms", quick ? 1000 : 3000)
const warmupMs = opt("warmup", quick ? 500 : 1000)
/** Bound on a close or a cancel before it counts as "did not finish". */
const capMs = opt("cap", quick ? 2000 : 3000)
const lifecycle = !argv.includes("--no-lifecycle")
const withPgbench = !argv.includes("--no-pgbench")
const lifecycleRounds = quick ? 1 : 3
const closeSizes = quick ? [100] : [10, 50, 100]

const contenders = ["ours-sql", "ours-raw", "effect-sql-pg", "pg-pool", "postgres-js"] as const
const labels: Record<string, string> = {
  "ours-sql": "ours (SqlClient)",
  "ours-raw": "ours (raw PgPool.use)",
  "effect-sql-pg": "@effect/sql-pg 0.53",
  "pg-pool": "pg-pool (pg.Pool)",
  "postgres-js": "postgres.js",
  "pgbench": "pgbench (C, reference)"
}
const colors: Record<string, string> = {
  "ours-sql": "#2563eb",
  "ours-raw": "#60a5fa",
  "effect-sql-pg": "#f59e0b",
  "pg-pool": "#6b7280",
  "postgres-js": "#10b981",
  "pgbench": "#c4b5fd"
}

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

// The children run a bundle of contender.ts (esbuild, which tsx ships) rather than tsx: they
// start in ~0.3 s instead of ~1.5 s and load no transpiler. `--tsx` (or a failed build) runs
// `node --import tsx bench/contender.ts` instead. The bundle lives under bench/node_modules so
// that what it leaves unbundled (`pg`, required at run time) resolves as from bench/.
const bundlePath = join(here, "node_modules", ".cache", "scoped-pool-bench", "contender.mjs")
let childEntry: ReadonlyArray<string> = ["--import", "tsx", join(here, "contender.ts")]
const buildChild = async (): Promise<string> => {
  if (argv.includes("--tsx")) return "tsx (--tsx)"
  try {
    const require = createRequire(join(root, "package.json"))
    const esbuild = createRequire(require.resolve("tsx/package.json"))("esbuild") as {
      build: (options: Record<string, unknown>) => Promise<unknown>
    }
    await esbuild.build({
      entryPoints: [join(here, "contender.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: bundlePath,
      external: ["pg-native"],
      logLevel: "error",
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
    })
    childEntry = [bundlePath]
    return "esbuild bundle"
  } catch (error) {
    console.error(`bundling bench/contender.ts failed, children run under tsx: ${String(error)}`)
    return "tsx (bundle failed)"
  }
}

const runContender = async (
  url: string,
  contender: string,
  workload: string,
  extra: ReadonlyArray<string>,
  timeoutMs: number
): Promise<Result | undefined> => {
  const args = [
    ...childEntry,
    contender,
    workload,
    "--url",
    url,
    "--ms",
    String(measureMs),
    "--warmup",
    String(warmupMs),
    ...extra
  ]
  // One retry: on a loaded machine a child occasionally dies while loading (tsx's esbuild service).
  for (let attempt = 1;; attempt++) {
    const { code, stderr, stdout } = await runChild(process.execPath, args, timeoutMs)
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

// ---------------------------------------------------------------------------------------------

interface Row {
  readonly contender: string
  readonly workload: string
  readonly qps: number
  readonly ratioToPgPool: number | undefined
  readonly cpuUsPerQuery: number | undefined
  readonly rssMb: number
  readonly rounds: ReadonlyArray<Result>
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
    server = await PgServer.start({ maxConnections: 400, settings: { max_locks_per_transaction: "128" } })
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
  try {
    for (const c of [...contenders, "pgbench"]) {
      const table = `bench_ins_${c.replace(/[^a-z0-9]/g, "_")}`
      await admin.query(`DROP TABLE IF EXISTS ${table}; CREATE UNLOGGED TABLE ${table} (a int, b text)`)
    }
    const pgbench = withPgbench && await hasOnPath("pgbench")
    const childMode = await buildChild()
    console.log(
      `PostgreSQL ${version}${server ? " (embedded)" : ""}; node ${process.version}; ${cpus().length} CPUs; ` +
        `${rounds} round(s) × ${measureMs} ms (+${warmupMs} ms warm-up)${
          pgbench ? "; pgbench on PATH" : "; pgbench not on PATH: skipped"
        }`
    )

    // Throughput: for each workload, interleaved rounds A B C D E A B C D E …
    const all: Array<Row> = []
    const childCap = warmupMs * 2 + measureMs * 2 + 30_000
    for (const w of workloads) {
      const perContender = new Map<string, Array<Result>>()
      const names: Array<string> = [...contenders, ...(pgbench ? ["pgbench"] : [])]
      for (let r = 0; r < rounds; r++) {
        for (const c of names) {
          const result = c === "pgbench"
            ? await runPgbench(url, w)
            : await runContender(url, c, w.kind, ["--concurrency", String(w.concurrency)], childCap)
          if (result !== undefined) perContender.set(c, [...(perContender.get(c) ?? []), result])
        }
      }
      const base = median((perContender.get("pg-pool") ?? []).map((x) => x.qps!))
      const line: Array<string> = []
      for (const c of names) {
        const rs = perContender.get(c) ?? []
        if (rs.length === 0) continue
        const qps = median(rs.map((x) => x.qps!))
        const cpu = rs.every((x) => x.cpuUsPerQuery !== undefined) ? median(rs.map((x) => x.cpuUsPerQuery!)) : undefined
        all.push({
          contender: c,
          workload: w.id,
          qps,
          ratioToPgPool: base > 0 ? qps / base : undefined,
          cpuUsPerQuery: cpu,
          rssMb: median(rs.map((x) => x.rssMb)),
          rounds: rs
        })
        line.push(`${c} ${qps} (${base > 0 ? (qps / base).toFixed(2) : "?"}×)`)
      }
      console.log(`${w.label.padEnd(16)} ${line.join("  ")}`)
    }

    // Lifecycle
    const close: Array<Record<string, unknown>> = []
    const cancel: Array<Record<string, unknown>> = []
    if (lifecycle) {
      // Ours: every round; peers (which hit the cap or leave backends behind): one round.
      const variants: Array<{ c: string; kind: string; sizes: ReadonlyArray<number>; rounds: number }> = [
        { c: "ours-sql", kind: "close", sizes: closeSizes, rounds: lifecycleRounds },
        { c: "ours-sql", kind: "close-daemon", sizes: quick ? [] : closeSizes, rounds: lifecycleRounds },
        { c: "effect-sql-pg", kind: "close", sizes: closeSizes, rounds: 1 },
        { c: "effect-sql-pg", kind: "close-daemon", sizes: quick ? [] : [100], rounds: 1 },
        { c: "pg-pool", kind: "close", sizes: closeSizes, rounds: 1 },
        { c: "postgres-js", kind: "close", sizes: quick ? [] : closeSizes, rounds: 1 }
      ]
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
          const [c, kind] = key.split("|")
          const row = {
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
      const cancelContenders = quick ? ["ours-sql", "effect-sql-pg"] : ["ours-sql", "ours-raw", "effect-sql-pg"]
      for (const c of cancelContenders) {
        const rs: Array<Result> = []
        for (let r = 0; r < (c === "effect-sql-pg" ? 1 : lifecycleRounds); r++) {
          const result = await runContender(url, c, "cancel", ["--cap", String(capMs)], 60_000)
          await terminateBench()
          if (result !== undefined) rs.push(result)
        }
        const row = {
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

    // Core checkout + return: bench/core.ts results when present, else a simple loop
    let core: Record<string, unknown>
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
      core = { source: "bench/contender.ts core checkout (simple loop)", nsPerLeaseIdle: r ? JSON.parse(r.note!) : {} }
    }
    console.log(`core checkout + return (ns, idle pool): ${JSON.stringify(core.nsPerLeaseIdle)}`)

    // Targets
    const row = (c: string, w: string) => all.find((x) => x.contender === c && x.workload === w)
    const ratio = (a: string, b: string, w: string) => {
      const x = row(a, w)
      const y = row(b, w)
      return x && y && y.qps > 0 ? x.qps / y.qps : undefined
    }
    const check = (name: string, value: number | undefined | null, holds: (v: number) => boolean, unit = "") => ({
      target: name,
      value: value === undefined || value === null ? null : Math.round(value * 100) / 100,
      unit,
      holds: value !== undefined && value !== null && holds(value)
    })
    const rssRatios = workloads.flatMap((w) =>
      ["ours-sql", "ours-raw"].map((c) => {
        const x = row(c, w.id)
        const y = row("pg-pool", w.id)
        return x && y ? x.rssMb / y.rssMb : undefined
      })
    ).filter((x): x is number => x !== undefined)
    const close100 = close.find((x) => x.contender === "ours-sql" && x.variant === "close" && x.busy === 100)
    const cancelOurs = cancel.filter((x) => String(x.contender).startsWith("ours"))
    const targets = [
      check(
        "SqlClient SELECT 1 ×10 ≥ 1.6× @effect/sql-pg",
        ratio("ours-sql", "effect-sql-pg", "select1-c10"),
        (v) => v >= 1.6,
        "×"
      ),
      check(
        "SqlClient SELECT 1 ×100 ≥ 1.6× @effect/sql-pg",
        ratio("ours-sql", "effect-sql-pg", "select1-c100"),
        (v) => v >= 1.6,
        "×"
      ),
      check(
        "SqlClient 100 rows ≥ 1.5× @effect/sql-pg",
        ratio("ours-sql", "effect-sql-pg", "rows100-c10"),
        (v) => v >= 1.5,
        "×"
      ),
      ...["select1-c1", "select1-c10", "select1-c100"].map((w) =>
        check(`raw PgPool ${w} ≥ 0.9× pg-pool`, ratio("ours-raw", "pg-pool", w), (v) => v >= 0.9, "×")
      ),
      check("raw PgPool 100 rows ≥ 1.0× pg-pool", ratio("ours-raw", "pg-pool", "rows100-c10"), (v) => v >= 1.0, "×"),
      check(
        "peak RSS ≤ 1.5× pg-pool (worst workload)",
        rssRatios.length ? Math.max(...rssRatios) : undefined,
        (v) => v <= 1.5,
        "×"
      ),
      check("close of 100 busy ≤ 100 ms", close100?.closeMs as number | null | undefined, (v) => v <= 100, "ms"),
      check("close of 100 busy leaves 0 backends", close100?.backendsLeft as number | undefined, (v) => v === 0),
      ...cancelOurs.map((x) =>
        check(`cancel confirmed ≤ 20 ms (${x.contender})`, x.cancelMs as number | null, (v) => v <= 20, "ms")
      )
    ]
    console.log("\ntargets:")
    for (const t of targets) console.log(`  ${t.holds ? "holds " : "MISSES"}  ${t.target}: ${t.value ?? "—"}${t.unit}`)

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
      pgbench: pgbench ? "on PATH" : "not on PATH (skipped)",
      children: childMode,
      commit: git.commit,
      packagesDirty: git.packagesDirty,
      durationSeconds: Math.round((Date.now() - started) / 1000)
    }
    writeFileSync(
      join(resultsDir, "latest.json"),
      JSON.stringify({ meta, throughput: all, close, cancel, core, targets }, null, 2) + "\n"
    )
    const names = [...contenders, ...(pgbench ? ["pgbench"] : [])]
    writeFileSync(
      join(resultsDir, "chart.svg"),
      renderChart({
        title: "scoped-pool vs peers: throughput as a ratio to pg-pool (higher is better)",
        subtitle:
          `pool max 10, PostgreSQL ${version}, node ${process.version}, ${cpus().length} CPUs, median of ${rounds} ` +
          `round(s) × ${measureMs / 1000} s, ${meta.date.slice(0, 10)}`,
        series: names.map((n) => ({ name: labels[n] ?? n, color: colors[n] ?? "#999" })),
        groups: workloads.map((w) => ({
          label: w.label,
          values: Object.fromEntries(names.map((n) => [labels[n] ?? n, row(n, w.id)?.ratioToPgPool]))
        }))
      })
    )
    const md: Array<string> = [
      `# Latest results (${meta.mode}, ${meta.date})`,
      "",
      `Code: ${git.commit}${git.packagesDirty ? " + uncommitted changes in packages/" : ""}. ` +
      `PostgreSQL ${version} (${meta.server}), node ${process.version}, ${meta.cpus}× ${meta.cpu}; pool max 10; ` +
      `median of ${rounds} round(s) × ${measureMs} ms after ${warmupMs} ms warm-up; pgbench ${meta.pgbench}.`,
      "",
      "| workload | contender | qps | × pg-pool | CPU µs/query | peak RSS MB |",
      "|---|---|---:|---:|---:|---:|",
      ...all.map((r) =>
        `| ${r.workload} | ${labels[r.contender] ?? r.contender} | ${r.qps} | ${fmt(r.ratioToPgPool, 2)} | ${
          fmt(r.cpuUsPerQuery, 1)
        } | ${fmt(r.rssMb, 1)} |`
      ),
      "",
      "| close | busy | contender | close ms | backends left after 1 s |",
      "|---|---:|---|---:|---:|",
      ...close.map((r) =>
        `| ${r.variant} | ${r.busy} | ${labels[String(r.contender)]} | ${
          r.closeMs === null ? `> ${capMs} (cap)` : fmt(r.closeMs as number, 1)
        } | ${r.backendsLeft} |`
      ),
      "",
      "| cancel (pool exhausted, timeout 300 ms) | backend stopped, ms after the deadline | caller resumed, ms |",
      "|---|---:|---:|",
      ...cancel.map((r) =>
        `| ${labels[String(r.contender)]} | ${
          r.cancelMs === null ? `> ${capMs} (cap)` : fmt(r.cancelMs as number, 1)
        } | ${r.returnMs === null ? `> ${capMs} (cap)` : fmt(r.returnMs as number, 1)} |`
      ),
      "",
      `Core checkout + return, ns per lease (idle pool), from ${core.source}: \`${
        JSON.stringify(core.nsPerLeaseIdle)
      }\``,
      "",
      "| target | value | holds |",
      "|---|---:|---|",
      ...targets.map((t) => `| ${t.target} | ${t.value ?? "—"}${t.unit} | ${t.holds ? "yes" : "**no**"} |`),
      ""
    ]
    writeFileSync(join(resultsDir, "latest.md"), md.join("\n"))
    console.log(`\nwrote bench/results/latest.json, latest.md, chart.svg in ${meta.durationSeconds} s`)
  } finally {
    await terminateBench().catch(() => undefined)
    await admin.end().catch(() => undefined)
    killChildren()
    await server?.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
