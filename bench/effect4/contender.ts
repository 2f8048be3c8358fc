/**
 * The Effect 4 contenders: `@effect/sql-pg` 4 (its own wire client) on Effect 4.1, one
 * measurement per process, as `bench/contender.ts` does for the Effect 3 ones. This folder is
 * its own workspace package (bench/effect4/package.json), so `effect` here is Effect 4 — both
 * at run time (bench/run.ts bundles this file with esbuild, resolving from here) and for `tsc`
 * (which resolves `effect` from this folder's node_modules). Nothing outside bench/effect4
 * imports it; the library packages never see Effect 4.
 *
 *   node --import tsx bench/effect4/contender.ts <effect4 | effect4-mux> <workload> [--url URL] …
 *
 * `effect4`: `PgClient.layer({ maxConnections: 10 })`, its defaults (exclusive checkout,
 * prepared-statement cache of 100). `effect4-mux`: the same with `multiplex: true` (statements
 * of several fibers pipelined on a connection, 32 per connection by default). Workloads as in
 * bench/contender.ts: select1, rows100, tx3, insert, close, close-daemon, cancel, slowhead, and
 * close-shared for effect4-mux.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import {
  after,
  cancelResult,
  cancelTimeoutMs,
  cpuMicros,
  observer,
  parseArgs,
  report,
  type Result,
  rssMb,
  SLEEP10,
  SLEEP60,
  sleepMs,
  sleepUntil,
  SLOW_SQL,
  slowHeadBaselineMs,
  SlowHeadRecorder,
  slowHeadResult,
  slowHeadWarmupMs,
  slowHeadWorkers,
  throughput,
  warmupUntil,
  type Window
} from "../shared.js"

const args = parseArgs(process.argv.slice(2))
const { app, capMs, concurrency, contender, table, url, workload } = args

if (contender !== "effect4" && contender !== "effect4-mux") throw new Error(`unknown contender ${contender}`)
const multiplex = contender === "effect4-mux"

const layer = (max: number, min = 0) =>
  PgClient.layer({
    url: Redacted.make(url),
    maxConnections: max,
    minConnections: min,
    applicationName: app,
    ...(multiplex ? { multiplex: true } : {})
  })

// ---------------------------------------------------------------------------------------------
// Throughput: the same loop and the same statements as bench/contender.ts, in Effect 4

const loopEffect = <E, R>(op: (i: number) => Effect.Effect<unknown, E, R>, done: () => boolean) =>
  Effect.suspend(() => {
    let count = 0
    const worker = Effect.whileLoop({
      while: () => !done(),
      body: () => op(count),
      step: () => {
        count += 1
      }
    })
    return Effect.map(
      Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true }),
      () => count
    )
  })

/** Warm-up (wall time and CPU, see `warmupUntil`), then the measured window. */
const measureEffect = <E, R>(op: (i: number) => Effect.Effect<unknown, E, R>): Effect.Effect<Window, E, R> =>
  Effect.gen(function*() {
    yield* loopEffect(op, warmupUntil(args.warmupMs))
    const cpu0 = cpuMicros()
    const t0 = performance.now()
    const queries = yield* loopEffect(op, after(args.measureMs))
    const elapsedMs = performance.now() - t0
    return { queries, elapsedMs, cpuUs: cpuMicros() - cpu0 }
  })

const sqlOp = (sql: SqlClient.SqlClient, name: string): (i: number) => Effect.Effect<unknown, unknown> => {
  switch (name) {
    case "select1":
      return () => sql`SELECT 1`
    case "rows100":
      return () => sql`SELECT g, g::text, now() FROM generate_series(1,100) g`
    case "tx3":
      return (i) =>
        sql.withTransaction(
          Effect.andThen(
            Effect.andThen(sql`SELECT 1`, sql`INSERT INTO ${sql(table)} (a, b) VALUES (${i}, ${"tx"})`),
            sql`SELECT ${i}::int AS i`
          )
        )
    case "insert":
      return (i) => sql`INSERT INTO ${sql(table)} (a, b) VALUES (${i}, ${"row"})`
  }
  throw new Error(`unknown workload ${name}`)
}

const runThroughput = (): Promise<Result> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return throughput(args, yield* measureEffect(sqlOp(sql, workload)))
    }).pipe(Effect.provide(layer(10)), Effect.scoped) as Effect.Effect<Result>
  )

// ---------------------------------------------------------------------------------------------
// Slow head (issue 12 line 4)

const runSlowHead = (): Promise<Result> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rec = new SlowHeadRecorder()
      const worker = Effect.whileLoop({
        while: () => rec.running,
        body: () =>
          Effect.suspend(() => {
            const t0 = performance.now()
            return Effect.map(sql`SELECT 1`, () => rec.record(t0))
          }),
        step: () => undefined
      })
      const workers = yield* Effect.forkChild(
        Effect.all(Array.from({ length: slowHeadWorkers }, () => worker), { concurrency: "unbounded", discard: true })
      )
      yield* Effect.promise(() => sleepUntil(warmupUntil(slowHeadWarmupMs(args))))
      rec.baseline.open()
      yield* Effect.sleep(slowHeadBaselineMs)
      rec.baseline.close()
      rec.slow.open()
      const t0 = performance.now()
      yield* sql.unsafe(SLOW_SQL)
      const slowMs = performance.now() - t0
      rec.slow.close()
      rec.baseline.open()
      yield* Effect.sleep(slowHeadBaselineMs)
      rec.baseline.close()
      rec.running = false
      yield* Fiber.join(workers)
      return slowHeadResult(args, rec, slowMs)
    }).pipe(Effect.provide(layer(10)), Effect.scoped) as Effect.Effect<Result>
  )

// ---------------------------------------------------------------------------------------------
// Lifecycle, as bench/contender.ts measures ours

/**
 * A statement that keeps one connection busy: on a multiplexed pool a plain statement shares its
 * connection (32 to a connection), so the busy connections of the lifecycle measurements are
 * reserved (`sql.reserve`, exclusive) there; without multiplex every checkout is exclusive.
 */
const busy = (sql: SqlClient.SqlClient, query: string): Effect.Effect<unknown, unknown> =>
  multiplex ? Effect.scoped(Effect.flatMap(sql.reserve, (conn) => conn.executeRaw(query, []))) : sql.unsafe(query)

/**
 * Close with `n` busy connections: busy fibers in the closing scope (`close`) or outside it
 * (`close-daemon`). `close-shared` (multiplex only): `n` plain statements, pipelined on shared
 * connections, in the closing scope.
 */
const runClose = async (): Promise<Result> => {
  const n = args.n
  const obs = await observer(url, app)
  const daemon = workload === "close-daemon"
  const shared = workload === "close-shared"
  if (shared && !multiplex) throw new Error("close-shared is for effect4-mux")
  const closeMs = await Effect.runPromise(
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(layer(n, n), scope)
      const sql = Context.get(ctx, SqlClient.SqlClient)
      const sleep = shared ? sql.unsafe(SLEEP60) : busy(sql, SLEEP60)
      const fibers = yield* Effect.forEach(
        Array.from({ length: n }),
        () => daemon ? Effect.forkDetach(sleep) : Effect.forkIn(sleep, scope)
      )
      // Shared: at least one connection per 32 statements runs one of them on the server.
      yield* Effect.promise(() => obs.waitActive(SLEEP60, shared ? Math.ceil(n / 32) : n))
      const t0 = performance.now()
      // Awaited, not run, under the cap: a close that cannot be interrupted must not hold the timeout.
      const closing = yield* Effect.forkDetach(Scope.close(scope, Exit.void))
      const closed = yield* Fiber.await(closing).pipe(Effect.timeoutOption(capMs))
      const elapsed = Option.isSome(closed) ? Math.round((performance.now() - t0) * 10) / 10 : null
      if (daemon) yield* Effect.forkDetach(Fiber.interruptAll(fibers))
      return elapsed
    }) as Effect.Effect<number | null>
  )
  await sleepMs(1000)
  const backendsLeft = await obs.backends()
  await obs.end()
  return { contender, workload, closeMs, backendsLeft, rssMb: rssMb() }
}

/**
 * Cancel latency while the pool is exhausted: 9 connections in pg_sleep(60) (reserved ones on a
 * multiplexed pool), the 10th runs a plain `sql.unsafe("SELECT pg_sleep(10)")` under a 300 ms
 * timeout.
 */
const runCancel = async (): Promise<Result> => {
  const obs = await observer(url, app)
  let returnedAt: number | undefined
  let fired = 0
  let goneAt: number | undefined
  await Effect.runPromise(
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(layer(10, 10), scope)
      const sql = Context.get(ctx, SqlClient.SqlClient)
      const hog = yield* Effect.forEach(Array.from({ length: 9 }), () => Effect.forkDetach(busy(sql, SLEEP60)))
      yield* Effect.promise(() => obs.waitActive(SLEEP60, 9))
      // The probe timer, armed just before the timeout's own, records the instant it fires.
      fired = performance.now() + cancelTimeoutMs
      yield* Effect.forkDetach(
        Effect.sleep(`${cancelTimeoutMs} millis`).pipe(Effect.tap(() =>
          Effect.sync(() => {
            fired = performance.now()
          })
        ))
      )
      yield* Effect.forkDetach(
        sql.unsafe(SLEEP10).pipe(
          Effect.timeout(`${cancelTimeoutMs} millis`),
          Effect.exit,
          Effect.tap(() =>
            Effect.sync(() => {
              returnedAt = performance.now()
            })
          )
        )
      )
      yield* Effect.promise(async () => {
        const [pid] = await obs.waitActive(SLEEP10, 1, 5000)
        goneAt = await obs.waitGone(pid!, SLEEP10, () => fired + capMs)
      })
      yield* Effect.forkDetach(Fiber.interruptAll(hog))
      yield* Fiber.await(yield* Effect.forkDetach(Scope.close(scope, Exit.void))).pipe(Effect.timeoutOption(3000))
    }) as Effect.Effect<void>
  )
  await obs.end()
  return cancelResult(args, fired, goneAt, returnedAt, multiplex ? "; multiplex" : "")
}

// ---------------------------------------------------------------------------------------------

const main = (): Promise<Result> => {
  switch (workload) {
    case "close":
    case "close-daemon":
    case "close-shared":
      return runClose()
    case "cancel":
      return runCancel()
    case "slowhead":
      return runSlowHead()
    default:
      return runThroughput()
  }
}

report(main())
