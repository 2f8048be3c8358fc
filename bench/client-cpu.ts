/**
 * The client's own CPU per statement, layer by layer, with no kernel and no server in the
 * figures: every connection talks to an in-process fake server (`bench/fake-server.ts`, a
 * `Duplex` given as the `stream` option) that answers on the next turn of the event loop. On a
 * shared machine the real-server figures (`bench/wire-cpu.ts`) swing by ±30 % with the load,
 * most of it in the socket syscalls; these do not, so they are the ones to compare a change by.
 *
 * Layers (10 connections, 10 concurrent callers unless `--concurrency`):
 * - `wire`: the wire connection, one statement at a time per connection (no Effect); `wire-ext`
 *   the same through the extended protocol (Parse/Bind/Describe/Execute/Sync) even without
 *   parameters;
 * - `wire-pipe`: one wire connection, all callers' statements pipelined on it;
 * - `conn`: the Effect adapter (`PgConnection.query`), one connection per fiber;
 * - `pool`: `pg.use((conn) => conn.query(...))` on a `PgPool` of 10;
 * - `sql`: the same pool's `SqlClient`, `` sql`…` ``.
 *
 * Workloads: `select1` (`SELECT 1`), `rows100` (100 rows × int4, text, timestamptz), `insert`
 * (`INSERT … VALUES ($1, $2)`). Rounds interleave the layers; the median is reported.
 *
 * `pnpm exec tsx bench/client-cpu.ts [--layers wire,conn,pool,sql] [--workloads select1,rows100,insert]
 *  [--statements 20000] [--rounds 5] [--concurrency 10] [--prepare] [--pool '{"reset":"always"}']`
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Connect from "../packages/pg/src/internal/connect.js"
import type { WireConnection } from "../packages/pg/src/internal/wire/connection.js"
import { FakeServer } from "./fake-server.js"

const arg = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : process.argv[at + 1]!
}
const layers = arg("layers", "wire,wire-pipe,conn,pool,sql").split(",")
const workloads = arg("workloads", "select1").split(",")
const total = Number(arg("statements", "20000"))
const rounds = Number(arg("rounds", "5"))
const concurrency = Number(arg("concurrency", "10"))
const poolOptions = JSON.parse(arg("pool", "{}")) as PgPool.Options
/** `--prepare`: `conn` and `pool` pass `{ prepare: true }` (and the pool's `SqlClient` prepares). */
const prepare = process.argv.includes("--prepare")
const queryOptions = prepare ? { prepare: true } : undefined

interface Workload {
  readonly sql: string
  readonly params: ReadonlyArray<unknown>
}
const workloadOf: Record<string, Workload> = {
  select1: { sql: "SELECT 1", params: [] },
  rows100: { sql: "SELECT g, g::text, now() FROM generate_series(1,100) g", params: [] },
  insert: { sql: "INSERT INTO bench_ins (a, b) VALUES ($1, $2)", params: [42, "a value"] }
}

const measure = async (run: (n: number) => Promise<void>) => {
  const cpu = process.cpuUsage()
  await run(total)
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / total
}

const main = async () => {
  const options: PgConnection.PgConnectionOptions = {
    host: "fake",
    port: 5432,
    database: "postgres",
    user: "postgres",
    applicationName: "sp-bench-client-cpu",
    stream: () => new FakeServer()
  }
  const scope = Effect.runSync(Scope.make())
  const runtime = await Effect.runPromise(
    Effect.gen(function*() {
      const resolved = yield* Connect.resolve(options)
      const wires = yield* Effect.all(Array.from({ length: concurrency }, () => Connect.connect(resolved, {})))
      const conns = yield* Effect.all(Array.from({ length: concurrency }, () => PgConnection.make(options)))
      const pool = yield* PgPool.make({
        host: "fake",
        stream: () => new FakeServer(),
        applicationName: "sp-bench-client-cpu",
        min: 10,
        max: 10,
        ...(prepare ? { prepare: true } : {}),
        ...poolOptions
      })
      yield* pool.sql`SELECT 1`
      const rt = yield* Effect.runtime<never>()
      return { wires, conns, pool, rt }
    }).pipe(Scope.extend(scope), Effect.provide(Reactivity.layer))
  )
  const { conns, pool, rt, wires } = runtime
  const runPromise = Runtime.runPromise(rt)
  const fibers = (effect: Effect.Effect<unknown, unknown>, n: number) =>
    runPromise(
      Effect.forEach(Array.from({ length: concurrency }), () => Effect.repeatN(effect, n / concurrency - 1), {
        concurrency: "unbounded",
        discard: true
      })
    )
  const oneAtATime = (wire: WireConnection, w: Workload, n: number, extended = false) =>
    new Promise<void>((resolve, reject) => {
      let left = n
      const params = w.params.length === 0 && !extended ? undefined : w.params
      const next = () => {
        if (left-- === 0) return resolve()
        wire.submit(w.sql, params, false, false, undefined, (error) => error ? reject(error) : next())
      }
      next()
    })
  const runsOf = (w: Workload): Record<string, (n: number) => Promise<void>> => {
    const use = pool.use((conn) => conn.query(w.sql, w.params, queryOptions))
    const sql = pool.sql
    const statement = Effect.suspend(() => sql.unsafe(w.sql, w.params))
    return {
      wire: (n) => Promise.all(wires.map((c) => oneAtATime(c, w, n / concurrency))).then(() => undefined),
      "wire-ext": (n) => Promise.all(wires.map((c) => oneAtATime(c, w, n / concurrency, true))).then(() => undefined),
      "wire-pipe": (n) =>
        Promise.all(Array.from({ length: concurrency }, () => oneAtATime(wires[0]!, w, n / concurrency))).then(() =>
          undefined
        ),
      conn: (n) =>
        Effect.runPromise(
          Effect.forEach(conns, (c) => Effect.repeatN(c.query(w.sql, w.params, queryOptions), n / concurrency - 1), {
            concurrency: "unbounded",
            discard: true
          })
        ),
      pool: (n) => fibers(use, n),
      sql: (n) => fibers(statement, n)
    }
  }
  try {
    for (const name of workloads) {
      const runs = runsOf(workloadOf[name]!)
      for (const layer of layers) await runs[layer]!(Math.min(10_000, total)) // warm-up
      const results: Record<string, Array<number>> = {}
      for (let r = 0; r < rounds; r++) {
        for (const layer of layers) (results[layer] ??= []).push(await measure(runs[layer]!))
      }
      for (const layer of layers) {
        const us = results[layer]!.sort((a, b) => a - b)
        process.stdout.write(
          `${name.padEnd(8)} ${layer.padEnd(10)} ${us[us.length >> 1]!.toFixed(2).padStart(7)} µs CPU  [${
            us.map((x) => x.toFixed(2)).join(" ")
          }]\n`
        )
      }
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exitCode = 1
})
