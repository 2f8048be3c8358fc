/**
 * One contender, one measurement, in its own process: `bench/run.ts` forks this file once per
 * contender × workload × round, so that CPU time and peak RSS belong to that contender alone.
 *
 *   tsx bench/contender.ts <contender> <workload> [--url URL] [--ms 3000] [--warmup 1000]
 *     [--concurrency 10] [--n 100] [--app name]
 *
 * The last stdout line is `RESULT {json}` (see `Result`). Contenders: ours-sql, ours-raw,
 * effect-sql-pg, pg-pool, postgres-js (and `core` for the checkout loop). Workloads: select1,
 * rows100, tx3, insert (throughput), close, close-daemon, cancel (lifecycle), checkout (core).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Pool from "@scoped-pool/core/Pool"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as EffectPool from "effect/Pool"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import GenericPool from "generic-pool"
import postgres from "postgres"
import pg from "./pg.js"

/** What a child reports. */
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
  /** checkout: ns per Pool.use round trip (no I/O). */
  readonly nsPerOp?: number
  readonly note?: string
}

// ---------------------------------------------------------------------------------------------
// Arguments

const [contender = "", workload = "", ...rest] = process.argv.slice(2)
const flag = (name: string, fallback: string): string => {
  const i = rest.indexOf(`--${name}`)
  return i >= 0 && rest[i + 1] !== undefined ? rest[i + 1]! : fallback
}
const url = flag("url", process.env.BENCH_DATABASE_URL ?? "")
const measureMs = Number(flag("ms", "3000"))
const warmupMs = Number(flag("warmup", "1000"))
const concurrency = Number(flag("concurrency", "10"))
const n = Number(flag("n", "10"))
const app = flag("app", `bench-${contender}`)
/** Bound on a close or a cancel before it counts as "did not finish". */
const capMs = Number(flag("cap", "3000"))
const closeCapMs = capMs
const cancelCapMs = capMs
const table = `bench_ins_${contender.replace(/[^a-z0-9]/g, "_")}`

export const ROWS_SQL = "SELECT g, g::text, now() FROM generate_series(1,100) g"
const INSERT_SQL = `INSERT INTO ${table} (a, b) VALUES ($1, $2)`
const SLEEP60 = "SELECT pg_sleep(60)"
const SLEEP10 = "SELECT pg_sleep(10)"

const rssMb = () => Math.round(process.resourceUsage().maxRSS / 1024 * 10) / 10

const cpuMicros = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

// ---------------------------------------------------------------------------------------------
// Throughput loops: `concurrency` workers, each running `op` back to back until the deadline.

interface Window {
  readonly queries: number
  readonly elapsedMs: number
  readonly cpuUs: number
}

const statementsPerOp = 1 // a transaction counts as one operation (BEGIN + 3 + COMMIT)

const loopEffect = <E, R>(op: (i: number) => Effect.Effect<unknown, E, R>, ms: number) =>
  Effect.suspend(() => {
    let count = 0
    const until = performance.now() + ms
    const worker = Effect.whileLoop({
      while: () => performance.now() < until,
      body: () => op(count),
      step: () => {
        count += statementsPerOp
      }
    })
    return Effect.map(
      Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true }),
      () => count
    )
  })

const measureEffect = <E, R>(op: (i: number) => Effect.Effect<unknown, E, R>): Effect.Effect<Window, E, R> =>
  Effect.gen(function*() {
    yield* loopEffect(op, warmupMs)
    const cpu0 = cpuMicros()
    const t0 = performance.now()
    const queries = yield* loopEffect(op, measureMs)
    const elapsedMs = performance.now() - t0
    return { queries, elapsedMs, cpuUs: cpuMicros() - cpu0 }
  })

const loopPromise = async (op: (i: number) => Promise<unknown>, ms: number): Promise<number> => {
  let count = 0
  const until = performance.now() + ms
  const worker = async () => {
    while (performance.now() < until) {
      await op(count)
      count += statementsPerOp
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return count
}

const measurePromise = async (op: (i: number) => Promise<unknown>): Promise<Window> => {
  await loopPromise(op, warmupMs)
  const cpu0 = cpuMicros()
  const t0 = performance.now()
  const queries = await loopPromise(op, measureMs)
  const elapsedMs = performance.now() - t0
  return { queries, elapsedMs, cpuUs: cpuMicros() - cpu0 }
}

const throughput = (w: Window): Result => ({
  contender,
  workload,
  queries: w.queries,
  elapsedMs: Math.round(w.elapsedMs),
  qps: Math.round(w.queries / (w.elapsedMs / 1000)),
  cpuUsPerQuery: Math.round(w.cpuUs / w.queries * 10) / 10,
  rssMb: rssMb()
})

// ---------------------------------------------------------------------------------------------
// Workloads through SqlClient (ours and @effect/sql-pg run the very same code)

const sqlOp = (sql: SqlClient.SqlClient, name: string): (i: number) => Effect.Effect<unknown, unknown> => {
  switch (name) {
    case "select1":
      return () => sql`SELECT 1`
    case "rows100":
      return () => sql`SELECT g, g::text, now() FROM generate_series(1,100) g`
    case "tx3":
      return (i) =>
        sql.withTransaction(
          Effect.zipRight(
            Effect.zipRight(sql`SELECT 1`, sql`INSERT INTO ${sql(table)} (a, b) VALUES (${i}, ${"tx"})`),
            sql`SELECT ${i}::int AS i`
          )
        )
    case "insert":
      return (i) => sql`INSERT INTO ${sql(table)} (a, b) VALUES (${i}, ${"row"})`
  }
  throw new Error(`unknown workload ${name}`)
}

const oursLayer = (max: number, min = 0) => PgPool.layer({ url: Redacted.make(url), max, min, applicationName: app })

const effectSqlPgLayer = (max: number, min = 0) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: max, minConnections: min, applicationName: app })

const runSqlClient = (layer: Layer.Layer<SqlClient.SqlClient, unknown>): Promise<Result> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return throughput(yield* measureEffect(sqlOp(sql, workload)))
    }).pipe(Effect.provide(layer), Effect.scoped) as Effect.Effect<Result>
  )

// ---------------------------------------------------------------------------------------------
// Ours through the raw PgPool API

const runOursRaw = (): Promise<Result> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const { use } = yield* PgPool.PgPool
      let op: (i: number) => Effect.Effect<unknown, unknown>
      switch (workload) {
        case "select1":
          op = () => use((c) => c.query("SELECT 1", []))
          break
        case "rows100":
          op = () => use((c) => c.query(ROWS_SQL, []))
          break
        case "tx3":
          op = (i) =>
            use((c) =>
              c.query("BEGIN", []).pipe(
                Effect.zipRight(c.query("SELECT 1", [])),
                Effect.zipRight(c.query(INSERT_SQL, [i, "tx"], { name: "ins" })),
                Effect.zipRight(c.query("SELECT $1::int AS i", [i], { name: "sel_i" })),
                Effect.zipRight(c.query("COMMIT", []))
              )
            )
          break
        case "insert":
          op = (i) => use((c) => c.query(INSERT_SQL, [i, "row"], { name: "ins" }))
          break
        default:
          throw new Error(`unknown workload ${workload}`)
      }
      return throughput(yield* measureEffect(op))
    }).pipe(Effect.provide(oursLayer(10)), Effect.scoped) as Effect.Effect<Result>
  )

// ---------------------------------------------------------------------------------------------
// pg-pool (pg.Pool) and postgres.js

const runPgPool = async (): Promise<Result> => {
  const pool = new pg.Pool({ connectionString: url, max: 10, application_name: app })
  pool.on("error", () => undefined)
  let op: (i: number) => Promise<unknown>
  switch (workload) {
    case "select1":
      op = () => pool.query("SELECT 1")
      break
    case "rows100":
      op = () => pool.query(ROWS_SQL)
      break
    case "tx3":
      op = async (i) => {
        const client = await pool.connect()
        try {
          await client.query("BEGIN")
          await client.query("SELECT 1")
          await client.query(INSERT_SQL, [i, "tx"])
          await client.query("SELECT $1::int AS i", [i])
          await client.query("COMMIT")
        } finally {
          client.release()
        }
      }
      break
    case "insert":
      op = (i) => pool.query(INSERT_SQL, [i, "row"])
      break
    default:
      throw new Error(`unknown workload ${workload}`)
  }
  const result = throughput(await measurePromise(op))
  await pool.end()
  return result
}

const runPostgresJs = async (): Promise<Result> => {
  const sql = postgres(url, { max: 10, connection: { application_name: app }, onnotice: () => undefined })
  let op: (i: number) => Promise<unknown>
  switch (workload) {
    case "select1":
      op = () => sql`SELECT 1`
      break
    case "rows100":
      op = () => sql`SELECT g, g::text, now() FROM generate_series(1,100) g`
      break
    case "tx3":
      op = (i) =>
        sql.begin(async (tx) => {
          await tx`SELECT 1`
          await tx`INSERT INTO ${tx(table)} (a, b) VALUES (${i}, ${"tx"})`
          await tx`SELECT ${i}::int AS i`
        })
      break
    case "insert":
      op = (i) => sql`INSERT INTO ${sql(table)} (a, b) VALUES (${i}, ${"row"})`
      break
    default:
      throw new Error(`unknown workload ${workload}`)
  }
  const result = throughput(await measurePromise(op))
  await sql.end({ timeout: 5 })
  return result
}

// ---------------------------------------------------------------------------------------------
// Lifecycle: a separate observer connection reads pg_stat_activity

const observer = async () => {
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
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  return { client, activeLike, backends, waitActive, end: () => client.end().catch(() => undefined) }
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Caps a promise: resolves to the elapsed ms, or null when `cap` passed first. */
const timed = async (p: Promise<unknown>, capMs: number): Promise<number | null> => {
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

/**
 * Close with `n` busy connections. `close`: the busy fibers belong to the closing scope (the
 * usual program shape: SIGINT interrupts main, its children are interrupted, then the pool's
 * finalizer runs). `close-daemon`: the leases are held by fibers outside the scope.
 */
const runClose = async (): Promise<Result> => {
  const obs = await observer()
  const daemon = workload === "close-daemon"
  let closeMs: number | null
  if (contender === "pg-pool") {
    const pool = new pg.Pool({ connectionString: url, max: n, application_name: app })
    pool.on("error", () => undefined)
    for (let i = 0; i < n; i++) pool.query(SLEEP60).catch(() => undefined)
    await obs.waitActive(SLEEP60, n)
    closeMs = await timed(pool.end(), closeCapMs)
  } else if (contender === "postgres-js") {
    const sql = postgres(url, { max: n, connection: { application_name: app } })
    for (let i = 0; i < n; i++) sql.unsafe(SLEEP60).catch(() => undefined)
    await obs.waitActive(SLEEP60, n)
    closeMs = await timed(sql.end({ timeout: 0 }), closeCapMs)
  } else {
    // One Effect program: a pool belongs to the runtime (fiber refs) that built it.
    const layer = (contender === "effect-sql-pg" ? effectSqlPgLayer(n, n) : oursLayer(n, n)) as Layer.Layer<
      SqlClient.SqlClient,
      unknown
    >
    closeMs = await Effect.runPromise(
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const ctx = yield* Layer.buildWithScope(layer, scope)
        const sql = Context.get(ctx, SqlClient.SqlClient)
        const sleep = sql.unsafe(SLEEP60)
        const fibers = yield* Effect.forEach(
          Array.from({ length: n }),
          () => daemon ? Effect.forkDaemon(sleep) : Effect.forkIn(sleep, scope)
        )
        yield* Effect.promise(() => obs.waitActive(SLEEP60, n))
        const t0 = performance.now()
        const closed = yield* Scope.close(scope, Exit.void).pipe(Effect.timeoutOption(closeCapMs))
        const elapsed = closed._tag === "Some" ? Math.round((performance.now() - t0) * 10) / 10 : null
        if (daemon) yield* Effect.forkDaemon(Fiber.interruptAll(fibers))
        return elapsed
      }) as Effect.Effect<number | null>
    )
  }
  await sleepMs(1000)
  const backendsLeft = await obs.backends()
  await obs.end()
  return { contender, workload, closeMs, backendsLeft, rssMb: rssMb() }
}

/**
 * Cancel latency while the pool is exhausted: pool max 10, 9 connections in pg_sleep(60), the
 * 10th runs pg_sleep(10) under Effect.timeout(300 ms). The observer polls pg_stat_activity every
 * 2 ms until that backend no longer runs it.
 */
const cancelTimeoutMs = 300

const runCancel = async (): Promise<Result> => {
  const obs = await observer()
  const layer = (contender === "effect-sql-pg" ? effectSqlPgLayer(10, 10) : oursLayer(10, 10)) as Layer.Layer<
    SqlClient.SqlClient | PgPool.PgPool,
    unknown
  >
  let returnedAt: number | undefined
  let fired = 0
  let goneAt: number | undefined
  await Effect.runPromise(
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(layer, scope)
      const sql = Context.get(ctx, SqlClient.SqlClient)
      const hog = yield* Effect.forEach(Array.from({ length: 9 }), () => Effect.forkDaemon(sql.unsafe(SLEEP60)))
      yield* Effect.promise(() => obs.waitActive(SLEEP60, 9))
      const statement: Effect.Effect<unknown, unknown> = contender === "ours-raw"
        ? Context.get(ctx as Context.Context<PgPool.PgPool>, PgPool.PgPool).use((c) => c.query(SLEEP10, []))
        : sql.unsafe(SLEEP10)
      // A probe timer of the same duration, armed just before the timeout's own: Node fires
      // same-duration timers in order, so it records the instant the timeout fires.
      fired = performance.now() + cancelTimeoutMs
      yield* Effect.forkDaemon(
        Effect.sleep(`${cancelTimeoutMs} millis`).pipe(Effect.tap(() => {
          fired = performance.now()
        }))
      )
      yield* Effect.forkDaemon(
        statement.pipe(
          Effect.timeout(`${cancelTimeoutMs} millis`),
          Effect.exit,
          Effect.tap(() => {
            returnedAt = performance.now()
          })
        )
      )
      yield* Effect.promise(async () => {
        const [pid] = await obs.waitActive(SLEEP10, 1, 5000)
        while (performance.now() < fired + cancelCapMs) {
          const { rows } = await obs.client.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query = $2",
            [pid, SLEEP10]
          )
          const now = performance.now()
          if (rows[0]!.n === 0) {
            goneAt = now
            return
          }
          await sleepMs(2)
        }
      })
      // Leave nothing behind: the hogs are interrupted, the pool closed (bounded).
      yield* Effect.forkDaemon(Fiber.interruptAll(hog))
      yield* Scope.close(scope, Exit.void).pipe(Effect.timeoutOption(3000))
    }) as Effect.Effect<void>
  )
  await obs.end()
  const round = (t: number | undefined) => t === undefined ? null : Math.round((t - fired) * 10) / 10
  return {
    contender,
    workload,
    cancelMs: round(goneAt),
    returnMs: round(returnedAt),
    rssMb: rssMb(),
    note: `timeout ${cancelTimeoutMs} ms; latencies from the instant the timeout fired`
  }
}

// ---------------------------------------------------------------------------------------------
// Core checkout + return without I/O: @scoped-pool/core vs effect/Pool vs generic-pool

const runCheckout = async (): Promise<Result> => {
  const ops = 200_000
  const perOp = (t0: number) => Math.round((performance.now() - t0) * 1e6 / ops)
  const ours = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const pool = yield* Pool.make({ acquire: Effect.succeed({}), min: 10, max: 10 })
    yield* Pool.waitReady(pool, "5 seconds")
    const once = Pool.use(pool, () => Effect.void)
    const loop = (k: number) => Effect.repeatN(once, k - 1)
    yield* loop(ops / 10)
    const t0 = performance.now()
    yield* loop(ops)
    return perOp(t0)
  })))
  const effectPool = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const pool = yield* EffectPool.make({ acquire: Effect.succeed({}), size: 10 })
    const once = Effect.scoped(pool.get)
    const loop = (k: number) => Effect.repeatN(once, k - 1)
    yield* loop(ops / 10)
    const t0 = performance.now()
    yield* loop(ops)
    return perOp(t0)
  })))
  const gp = GenericPool.createPool({ create: async () => ({}), destroy: async () => undefined }, { min: 10, max: 10 })
  const gpLoop = async (k: number) => {
    for (let i = 0; i < k; i++) await gp.release(await gp.acquire())
  }
  await gpLoop(ops / 10)
  const t0 = performance.now()
  await gpLoop(ops)
  const generic = perOp(t0)
  await gp.drain()
  await gp.clear()
  return {
    contender,
    workload,
    nsPerOp: ours,
    rssMb: rssMb(),
    note: JSON.stringify({
      "scoped-pool core Pool.use": ours,
      "effect/Pool scoped get": effectPool,
      "generic-pool": generic
    })
  }
}

// ---------------------------------------------------------------------------------------------

const main = async (): Promise<Result> => {
  if (workload === "checkout") return runCheckout()
  if (workload === "close" || workload === "close-daemon") return runClose()
  if (workload === "cancel") return runCancel()
  switch (contender) {
    case "ours-sql":
      return runSqlClient(oursLayer(10))
    case "ours-raw":
      return runOursRaw()
    case "effect-sql-pg":
      return runSqlClient(effectSqlPgLayer(10))
    case "pg-pool":
      return runPgPool()
    case "postgres-js":
      return runPostgresJs()
  }
  throw new Error(`unknown contender ${contender}`)
}

main().then(
  (result) => {
    console.log(`RESULT ${JSON.stringify(result)}`)
    process.exit(0)
  },
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
