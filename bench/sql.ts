/**
 * Micro-benchmark of the SqlClient statement path (issue 13): no I/O, a fake connection that
 * answers every statement at once, so what is measured is the cost of the path itself. Median ns
 * per operation over SAMPLES samples (each about a millisecond of operations), contenders
 * interleaved sample by sample, all in one fiber (the connection is always idle):
 *
 * - `raw`: `pool.use((conn) => conn.queryRaw(…))` — the raw API, the floor;
 * - `ours`: the `SqlClient` our layers provide (`PgPool.make`'s), over the same pool;
 * - `@effect/sql`: `SqlClient.make` over connections that lease per statement through
 *   `Pool.use` and per transaction through `Pool.get` with a Semaphore — `@effect/sql`'s own
 *   statement and transaction machinery, exactly as our layers ran it up to 0e3a561 (so this
 *   column is also the "before").
 *
 * Operations: `select1` is `sql\`SELECT 1\`` (a new statement each time, as application code
 * builds them; raw: one `queryRaw`); `tx3` is `withTransaction` of three such statements (raw:
 * BEGIN, three statements and COMMIT in one `Pool.use`). The targets: ours − raw ≤ 2.5 µs on
 * `select1` and ≤ 10 µs on `tx3`. Effect's default tracer is in place, as in an application
 * without OpenTelemetry.
 *
 * Two clocks: wall time, and the process's CPU time (user + system, every thread, GC included).
 * On a shared machine the CPU figures are the ones to read: a sample that is preempted counts
 * its wait in wall time only.
 *
 *   pnpm exec tsx bench/sql.ts            (BENCH_SAMPLES=40 for a short run)
 *
 * Writes bench/results/sql.json.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Pool from "@scoped-pool/core/Pool"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
// The one reach into internals: the client our layers build, over a pool of fake connections.
import * as SqlPool from "../packages/pg/src/internal/sqlClient.js"

/** Operations per sample: about a millisecond each, so that a sample is rarely preempted on a loaded machine. */
const BATCH = { select1: 500, tx3: 100 } as const
/** Samples per contender and operation, after the warm-up. */
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200)
const WARMUP = 30

const now = () => process.hrtime.bigint()
const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

// ---------------------------------------------------------------------------------------
// A connection that answers at once

const result: PgConnection.RawQueryResult = {
  rows: [{ "?column?": 1 }],
  rowCount: 1,
  command: "SELECT",
  fields: []
}
const answer = Effect.succeed([result] as ReadonlyArray<PgConnection.RawQueryResult>)
const answerOne = Effect.succeed(result as PgConnection.QueryResult)

const fakeConnection = (id: number): PgConnection.PgConnection => ({
  [PgConnection.TypeId]: PgConnection.TypeId,
  id,
  processId: id,
  transactionStatus: "idle",
  isAlive: true,
  busy: false,
  state: "idle",
  queueDepth: 0,
  headRunningMillis: 0,
  parameter: () => undefined,
  query: () => answerOne,
  queryRaw: () => answer,
  cursor: () => Stream.make(result.rows[0]),
  cancel: Effect.succeed("confirmed"),
  rollbackIfDirty: Effect.succeed(true),
  resetNeeded: () => false,
  reset: () => Effect.succeed(true),
  onNotification: () => () => {},
  onClose: () => () => {}
})

let nextId = 0
/** A pool of fake connections with `PgPool.make`'s hooks (a clean connection returns at once). */
const makePool = Pool.make({
  name: "bench-sql",
  acquire: Effect.sync(() => fakeConnection(++nextId)),
  min: 1,
  max: 1,
  isAlive: (conn) => conn.isAlive,
  reset: (conn) => conn.transactionStatus === "idle" && !conn.busy ? undefined : Effect.void
}).pipe(Effect.orDie)

// ---------------------------------------------------------------------------------------
// Contenders

type Op = "select1" | "tx3"
const ops: ReadonlyArray<Op> = ["select1", "tx3"]
type Clock = "wall" | "cpu"
const clocks: ReadonlyArray<Clock> = ["wall", "cpu"]

interface Contender {
  readonly name: string
  readonly make: Effect.Effect<Record<Op, Effect.Effect<unknown, unknown>>, never, Scope.Scope>
}

const spanAttributes: ReadonlyArray<readonly [string, unknown]> = [
  ["db.system.name", "postgresql"],
  ["db.namespace", "bench"],
  ["server.address", "localhost"],
  ["server.port", 5432]
]

const sqlOps = (sql: SqlClient.SqlClient): Record<Op, Effect.Effect<unknown, unknown>> => {
  const select1 = Effect.suspend(() => sql`SELECT 1`)
  return {
    select1,
    tx3: Effect.suspend(() => sql.withTransaction(Effect.zipRight(select1, Effect.zipRight(select1, select1))))
  }
}

const raw: Contender = {
  name: "raw pool.use",
  make: Effect.map(makePool, (pool) => ({
    select1: pool.use((conn) => conn.queryRaw("SELECT 1", [])),
    tx3: pool.use((conn) =>
      Effect.zipRight(
        conn.query("BEGIN", []),
        Effect.zipRight(
          conn.queryRaw("SELECT 1", []),
          Effect.zipRight(
            conn.queryRaw("SELECT 1", []),
            Effect.zipRight(conn.queryRaw("SELECT 1", []), conn.query("COMMIT", []))
          )
        )
      )
    )
  }))
}

const ours: Contender = {
  name: "ours SqlClient",
  make: Effect.gen(function*() {
    const pool = yield* makePool
    const sql = yield* SqlPool.make({
      pool,
      prepare: false,
      pipeline: false,
      streamChunkSize: 128,
      turnTimeout: 30_000,
      compiler: PgClient.makeCompiler(),
      spanAttributes,
      transformRows: undefined
    })
    return sqlOps(sql)
  }).pipe(Effect.provide(Reactivity.layer))
}

const toSqlError = (cause: unknown) => new SqlError({ cause, message: "Failed to execute statement" })

/** `@effect/sql`'s machinery over our pool, as our layers used it up to 0e3a561. */
const effectSql: Contender = {
  name: "@effect/sql SqlClient.make",
  make: Effect.gen(function*() {
    const pool = yield* makePool
    const connection = (
      run: <A>(
        f: (conn: PgConnection.PgConnection) => Effect.Effect<A, unknown>
      ) => Effect.Effect<A, SqlError>
    ): Connection => ({
      execute: (sql, params) => run((conn) => Effect.map(conn.queryRaw(sql, params), (r) => r[0]!.rows)),
      executeRaw: (sql, params) => run((conn) => conn.queryRaw(sql, params)),
      executeValues: (sql, params) => run((conn) => Effect.map(conn.query(sql, params), (r) => r.rows)),
      executeUnprepared: (sql, params) => run((conn) => Effect.map(conn.queryRaw(sql, params), (r) => r[0]!.rows)),
      executeStream: () => Stream.die("not measured")
    })
    const pooled = connection((f) => Effect.mapError(pool.use(f), toSqlError))
    const transactionAcquirer = Effect.flatMap(
      Effect.mapError(pool.get, toSqlError),
      (conn) =>
        Effect.map(
          Effect.makeSemaphore(1),
          (mutex) => connection((f) => Effect.mapError(mutex.withPermits(1)(f(conn)), toSqlError))
        )
    )
    const sql = yield* SqlClient.make({
      acquirer: Effect.succeed(pooled),
      transactionAcquirer,
      compiler: PgClient.makeCompiler(),
      spanAttributes
    })
    return sqlOps(sql)
  }).pipe(Effect.provide(Reactivity.layer))
}

const contenders: ReadonlyArray<Contender> = [raw, ours, effectSql]

// ---------------------------------------------------------------------------------------
// Measurement

/** Wall and CPU (user + system, all threads) nanoseconds per operation over one batch. */
const timeBatch = (op: Effect.Effect<unknown, unknown>, batch: number) =>
  Effect.suspend(() => {
    const cpu = process.cpuUsage()
    const start = now()
    let i = 0
    return Effect.whileLoop({ while: () => i++ < batch, body: () => op, step: () => {} }).pipe(
      Effect.map(() => {
        const wall = Number(now() - start) / batch
        const used = process.cpuUsage(cpu)
        return { wall, cpu: ((used.user + used.system) * 1_000) / batch }
      }),
      Effect.orDie
    )
  })

const main = Effect.gen(function*() {
  const built = yield* Effect.forEach(contenders, (c) => c.make)
  const samples: Record<Clock, Record<string, Record<Op, Array<number>>>> = {
    wall: Object.fromEntries(contenders.map((c) => [c.name, { select1: [], tx3: [] }])),
    cpu: Object.fromEntries(contenders.map((c) => [c.name, { select1: [], tx3: [] }]))
  }
  for (const op of ops) {
    for (let round = 0; round < WARMUP + SAMPLES; round++) {
      for (let k = 0; k < contenders.length; k++) {
        const i = (round + k) % contenders.length // rotate who goes first
        const ns = yield* timeBatch(built[i]![op], BATCH[op])
        if (round >= WARMUP) {
          samples.wall[contenders[i]!.name]![op].push(ns.wall)
          samples.cpu[contenders[i]!.name]![op].push(ns.cpu)
        }
      }
    }
  }
  return samples
}).pipe(Effect.scoped)

const load = loadavg()
const samples = await Effect.runPromise(main.pipe(Logger.withMinimumLogLevel(LogLevel.Error)))
const load1 = loadavg()

type Row = Record<Op, { median: number; p10: number; p90: number }>
const summarise = (byContender: Record<string, Record<Op, Array<number>>>): Record<string, Row> =>
  Object.fromEntries(
    Object.entries(byContender).map(([name, byOp]) => [
      name,
      Object.fromEntries(
        ops.map((
          op
        ) => [op, { median: median(byOp[op]), p10: quantile(byOp[op], 0.1), p90: quantile(byOp[op], 0.9) }])
      ) as Row
    ])
  )
const table = { wall: summarise(samples.wall), cpu: summarise(samples.cpu) }

const overRaw = (clock: Clock, op: Op) => table[clock][ours.name]![op].median - table[clock][raw.name]![op].median
const targets = {
  select1: overRaw("wall", "select1") <= 2_500,
  tx3: overRaw("wall", "tx3") <= 10_000,
  select1Cpu: overRaw("cpu", "select1") <= 2_500,
  tx3Cpu: overRaw("cpu", "tx3") <= 10_000
}
const lines = [
  `median ns per operation; ${SAMPLES} samples of ${BATCH.select1} (select1) / ${BATCH.tx3} (tx3); load average ${
    load.map((l) => l.toFixed(2)).join(" ")
  } before, ${load1.map((l) => l.toFixed(2)).join(" ")} after`
]
for (const clock of clocks) {
  lines.push(
    "",
    `${clock === "wall" ? "wall clock" : "CPU time (user + system)"}`,
    "contender".padEnd(30) + ops.map((op) => op.padStart(12) + "over raw".padStart(12) + "ratio".padStart(8)).join("")
  )
  const rawRow = table[clock][raw.name]!
  for (const [name, row] of Object.entries(table[clock])) {
    lines.push(
      name.padEnd(30) +
        ops.map((op) =>
          row[op].median.toFixed(0).padStart(12) + (row[op].median - rawRow[op].median).toFixed(0).padStart(12) +
          (row[op].median / rawRow[op].median).toFixed(2).padStart(8)
        ).join("")
    )
  }
}
const verdict = (met: boolean) => met ? "met" : "MISSED"
lines.push(
  "",
  `select1: ours ${overRaw("wall", "select1").toFixed(0)} ns (wall), ${
    overRaw("cpu", "select1").toFixed(0)
  } ns (CPU) over raw (target <= 2500: ${verdict(targets.select1)} / ${verdict(targets.select1Cpu)})`,
  `tx3: ours ${overRaw("wall", "tx3").toFixed(0)} ns (wall), ${
    overRaw("cpu", "tx3").toFixed(0)
  } ns (CPU) over raw (target <= 10000: ${verdict(targets.tx3)} / ${verdict(targets.tx3Cpu)})`
)
process.stdout.write(lines.join("\n") + "\n")

const out = join(dirname(fileURLToPath(import.meta.url)), "results", "sql.json")
mkdirSync(dirname(out), { recursive: true })
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      loadavg: { before: load, after: load1 },
      unit: "ns per operation (wall clock, and CPU time of the process)",
      batch: BATCH,
      samples: SAMPLES,
      operations: {
        select1: "sql`SELECT 1` (raw: one queryRaw in Pool.use)",
        tx3: "withTransaction of 3 statements (raw: BEGIN, 3 statements, COMMIT in one Pool.use)"
      },
      results: table,
      targets
    },
    null,
    2
  ) + "\n"
)
