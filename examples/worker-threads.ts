/**
 * One pool per worker thread. A pool belongs to the runtime (and so the thread) that built
 * it and cannot be sent to another thread; each worker builds its own from the same
 * configuration, so the total number of connections is bounded by workers × max.
 *
 *   DATABASE_URL=postgres://… WORKERS=3 pnpm tsx examples/worker-threads.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgPool } from "@scoped-pool/pg"
import { Console, Effect, Redacted } from "effect"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"

const workers = Number(process.env.WORKERS ?? 3)
const maxPerWorker = 2

interface Report {
  readonly worker: number
  readonly statements: number
  readonly backends: number
  readonly poolSize: number
}

// In each worker: its own pool, some statements, a report to the main thread.
const work = (worker: number, url: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pg = yield* PgPool.PgPool
    const pids = new Set<number>()
    yield* Effect.forEach(Array.from({ length: 20 }), () =>
      Effect.map(sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`, ([row]) => {
        pids.add(row!.pid)
      }), { concurrency: 4 })
    const stats = yield* pg.stats
    const report: Report = { worker, statements: 20, backends: pids.size, poolSize: stats.size }
    parentPort!.postMessage(report)
  }).pipe(
    Effect.provide(PgPool.layer({ url: Redacted.make(url), max: maxPerWorker, applicationName: `worker-${worker}` }))
  )

// A worker runs this very file. It runs from TypeScript source here, and workers do not inherit
// the main thread's module loader (tsx), so each registers it first; a compiled application
// would simply pass its .js file to `new Worker`.
const bootstrap = `import("tsx/esm/api").then(({ register }) => { register(); return import(${
  JSON.stringify(import.meta.url)
}) })`

// In the main thread: start the workers, collect their reports.
const main = Effect.gen(function*() {
  const url = process.env.DATABASE_URL
  if (url === undefined) return yield* Effect.dieMessage("set DATABASE_URL")
  const reports = yield* Effect.forEach(
    Array.from({ length: workers }, (_, i) => i),
    (worker) =>
      Effect.async<Report, Error>((resume) => {
        const thread = new Worker(bootstrap, { eval: true, workerData: { worker, url } })
        thread.once("message", (report: Report) => resume(Effect.succeed(report)))
        thread.once("error", (error) => resume(Effect.fail(error)))
        return Effect.promise(() => thread.terminate())
      }),
    { concurrency: "unbounded" }
  )
  for (const report of reports) yield* Console.log(JSON.stringify(report))
  const total = reports.reduce((n, r) => n + r.poolSize, 0)
  yield* Console.log(`connections in total: ${total} (at most ${workers} × ${maxPerWorker})`)
})

if (isMainThread) {
  NodeRuntime.runMain(main)
} else {
  const { url, worker } = workerData as { readonly worker: number; readonly url: string }
  // A worker ends when its work (and so its pool) is done: no signal handling here.
  Effect.runFork(work(worker, url))
}
