/**
 * Client CPU per `SELECT 1` at 10 concurrent (issue 12 line 6's target: ≤ 12 µs raw), in
 * process, against an embedded server: `process.cpuUsage()` over a fixed number of statements,
 * divided by their count (the server's CPU is its own process, not counted). Layers:
 *
 * - `wire`: 10 wire connections, one statement at a time each (no Effect at all);
 * - `wire-pipelined`: 1 wire connection, 10 statements in flight (pipelining);
 * - `PgConnection`: the Effect adapter, 10 connections, 10 fibers;
 * - `PgPool raw`: `pg.use((conn) => conn.query("SELECT 1", []))`, pool of 10, 10 fibers;
 * - `pg.Client`: pg 8.23, 10 clients, for comparison in the same run.
 *
 * `pnpm tsx bench/wire-cpu.ts [statements per layer]` — a few seconds; not run in CI.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as PgServer from "@scoped-pool/test/PgServer"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Connect from "../packages/pg/src/internal/connect.js"
import type { WireConnection } from "../packages/pg/src/internal/wire/connection.js"
import pg from "./pg.js"

const total = Number(process.argv[2] ?? 40_000)
const concurrency = 10

const cpuPer = async (name: string, run: (n: number) => Promise<void>) => {
  await run(Math.min(5_000, total / 4)) // warm-up
  const cpu = process.cpuUsage()
  const start = performance.now()
  await run(total)
  const used = process.cpuUsage(cpu)
  const wall = performance.now() - start
  const us = (used.user + used.system) / total
  process.stdout.write(
    `${name.padEnd(18)} ${us.toFixed(1).padStart(6)} µs CPU per SELECT 1   ${
      (total / wall * 1000).toFixed(0).padStart(7)
    } statements/s\n`
  )
}

const main = async () => {
  const server = await PgServer.start({ maxConnections: 100 })
  const url = new URL(server.url)
  const options: PgConnection.PgConnectionOptions = {
    host: url.hostname,
    port: Number(url.port),
    database: "postgres",
    user: server.user,
    password: Redacted.make(server.password),
    applicationName: "sp-bench-cpu"
  }
  try {
    // wire: plain callbacks
    const resolved = Effect.runSync(Connect.resolve(options))
    const wires = await Promise.all(
      Array.from({ length: concurrency }, () => Effect.runPromise(Connect.connect(resolved, {})))
    )
    const oneAtATime = (wire: WireConnection, n: number) =>
      new Promise<void>((resolve, reject) => {
        let left = n
        const next = () => {
          if (left-- === 0) return resolve()
          wire.submit("SELECT 1", undefined, false, false, undefined, (error) => error ? reject(error) : next())
        }
        next()
      })
    await cpuPer("wire", (n) => Promise.all(wires.map((w) => oneAtATime(w, n / concurrency))).then(() => undefined))
    await cpuPer(
      "wire-pipelined",
      (n) =>
        Promise.all(Array.from({ length: concurrency }, () => oneAtATime(wires[0]!, n / concurrency))).then(() =>
          undefined
        )
    )
    await Promise.all(wires.map((w) => new Promise<void>((resolve) => w.close(resolve))))

    // the Effect adapter and the pool
    await Effect.runPromise(Effect.scoped(
      Effect.gen(function*() {
        const conns = yield* Effect.all(Array.from({ length: concurrency }, () => PgConnection.make(options)))
        const loop = (conn: PgConnection.PgConnection, n: number) => Effect.repeatN(conn.query("SELECT 1", []), n - 1)
        yield* Effect.promise(() =>
          cpuPer(
            "PgConnection",
            (n) =>
              Effect.runPromise(
                Effect.forEach(conns, (c) => loop(c, n / concurrency), { concurrency: "unbounded", discard: true })
              )
          )
        )
        const pool = yield* PgPool.make({
          url: Redacted.make(server.url),
          applicationName: "sp-bench-cpu",
          min: 10,
          max: 10
        })
        yield* pool.sql`SELECT 1`
        const use = pool.use((conn) => conn.query("SELECT 1", []))
        // the pool belongs to this runtime: run the loops on it
        const runtime = yield* Effect.runtime<never>()
        yield* Effect.promise(() =>
          cpuPer("PgPool raw", (n) =>
            Runtime.runPromise(runtime)(
              Effect.forEach(Array.from({ length: concurrency }), () => Effect.repeatN(use, n / concurrency - 1), {
                concurrency: "unbounded",
                discard: true
              })
            ))
        )
      }).pipe(Effect.provide(Reactivity.layer))
    ))

    // pg, for comparison
    const clients = await Promise.all(Array.from({ length: concurrency }, async () => {
      const client = new pg.Client({ connectionString: server.url, application_name: "sp-bench-cpu" })
      await client.connect()
      return client
    }))
    await cpuPer("pg.Client", (n) =>
      Promise.all(clients.map(async (client) => {
        for (let i = 0; i < n / concurrency; i++) await client.query("SELECT 1")
      })).then(() => undefined))
    await Promise.all(clients.map((c) => c.end()))
  } finally {
    await server.stop()
  }
}

main().catch((error) => {
  process.stderr.write(`${error}\n`)
  process.exitCode = 1
})
