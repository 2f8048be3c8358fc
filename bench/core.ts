/**
 * Micro-benchmark of the core pool: checkout + return, in median ns per lease, for
 *
 * - `Pool.use` (ours, the hot path: no Scope),
 * - `Effect.scoped(Pool.get)` (ours),
 * - `Effect.scoped(Pool.get)` of `effect/Pool`,
 * - `acquire` + `release` of `generic-pool` (Promise-based, outside Effect),
 *
 * at 0 waiters (one fiber leasing an idle resource) and at 10 and 1,000 waiters (a pool of
 * max 1 and W + 1 fibers leasing it in a loop, so that W are always queued: one lease is one
 * hand-off, and a flat cost means a hand-off does not depend on the queue's length); then
 * 100,000 leases through `Pool.use` with the heap measured before and after, failing (exit 1)
 * when it grew by more than `HEAP_BOUND_BYTES`. See bench/README.md.
 *
 *   node --expose-gc --import tsx bench/core.ts      (or: pnpm exec tsx bench/core.ts)
 *
 * Writes bench/results/core.json.
 */
import * as Pool from "@scoped-pool/core/Pool"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as EffectPool from "effect/Pool"
import type * as Scope from "effect/Scope"
import * as GenericPool from "generic-pool"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"

/** Leases per sample. */
const BATCH = 1_000
/** Samples per contender and scenario, after the warm-up. */
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200)
const WARMUP = 50
/** Waiting fibers in the hand-off scenarios. */
const WAITERS = [10, 1_000] as const
/** Leases in the heap check, and the growth of the heap (after GC) it allows. */
const HEAP_LEASES = 100_000
const HEAP_BOUND_BYTES = 2 * 1024 * 1024

// `global.gc` without `--expose-gc` on the command line.
v8.setFlagsFromString("--expose-gc")
const gc: () => void = (globalThis as { gc?: () => void }).gc ?? vm.runInNewContext("gc")

interface Resource {
  readonly id: number
}

const now = () => process.hrtime.bigint()

const progress = (message: string) => Effect.sync(() => process.stderr.write(`[core bench] ${message}\n`))

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
// Contenders

/** One way to lease: a pool of `size` resources and one lease of it, as an Effect. */
interface Contender {
  readonly name: string
  readonly make: (size: number) => Effect.Effect<Lessor, never, Scope.Scope>
}

interface Lessor {
  /** `n` leases one after the other in the calling fiber; the elapsed nanoseconds. */
  readonly sequential: (n: number) => Effect.Effect<number>
  /**
   * `fibers` concurrent loops of leases, run until `batches` batches of `batch` leases were made
   * in all; the elapsed nanoseconds of each batch.
   */
  readonly concurrent: (fibers: number, batch: number, batches: number) => Effect.Effect<Array<number>>
}

let nextId = 0
let nextPool = 0
const acquireOurs = Effect.sync((): Resource => ({ id: nextId++ }))

/** Counts leases and records the time of every `batch`-th one; `done` after `batches` batches. */
const batchClock = (batch: number, batches: number, done: () => void) => {
  const times: Array<number> = []
  let count = 0
  let last = 0n
  let armed = false
  return {
    times,
    arm: () => {
      armed = true
      last = now()
    },
    tick: () => {
      if (!armed || ++count % batch !== 0) return
      const t = now()
      times.push(Number(t - last))
      last = t
      if (times.length === batches) {
        armed = false
        done()
      }
    }
  }
}

const effectLessor = (lease: (onLease: () => void) => Effect.Effect<unknown, unknown>): Lessor => {
  const once = lease(() => {})
  return {
    sequential: (n) =>
      Effect.suspend(() => {
        const start = now()
        let i = 0
        return Effect.whileLoop({
          while: () => i++ < n,
          body: () => once,
          step: () => {}
        }).pipe(Effect.map(() => Number(now() - start)), Effect.orDie)
      }),
    concurrent: (fibers, batch, batches) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<void>()
        const clock = batchClock(batch, batches, () => Deferred.unsafeDone(done, Effect.void))
        const loop = lease(clock.tick).pipe(Effect.forever, Effect.orDie)
        const running: Array<Fiber.RuntimeFiber<never>> = []
        for (let i = 0; i < fibers; i++) running.push(yield* Effect.fork(loop))
        // Let every fiber queue up before the clock starts.
        yield* Effect.repeatN(Effect.yieldNow(), 3)
        clock.arm()
        yield* Deferred.await(done)
        yield* Fiber.interruptAll(running)
        return clock.times
      })
  }
}

const ours = (via: "use" | "get"): Contender => ({
  name: via === "use" ? "scoped-pool Pool.use" : "scoped-pool Pool.get (scoped)",
  make: (size) =>
    Effect.gen(function*() {
      const pool = yield* Pool.make({ name: `bench-${nextPool++}`, acquire: acquireOurs, min: size, max: size }).pipe(
        Effect.orDie
      )
      yield* Pool.waitReady(pool, "10 seconds").pipe(Effect.orDie)
      return effectLessor((onLease) => {
        if (via === "get") return Effect.scoped(Effect.map(Pool.get(pool), onLease))
        const body = Effect.sync(onLease)
        return Pool.use(pool, () => body)
      })
    })
})

const effectPool: Contender = {
  name: "effect/Pool get (scoped)",
  make: (size) =>
    Effect.gen(function*() {
      const pool = yield* EffectPool.make({ acquire: acquireOurs, size })
      // `make` fills the pool in the background: lease every item once to wait for it.
      yield* Effect.scoped(Effect.all(Array.from({ length: size }, () => EffectPool.get(pool)), { concurrency: size }))
      return effectLessor((onLease) => Effect.scoped(Effect.map(EffectPool.get(pool), onLease)))
    })
}

const genericPool: Contender = {
  name: "generic-pool acquire+release",
  make: (size) =>
    Effect.gen(function*() {
      const pool = GenericPool.createPool<Resource>(
        { create: async () => ({ id: nextId++ }), destroy: async () => {} },
        { min: size, max: size }
      )
      yield* Effect.addFinalizer(() => Effect.promise(() => pool.drain().then(() => pool.clear())))
      yield* Effect.promise(() => pool.ready())
      return {
        sequential: (n) =>
          Effect.promise(async () => {
            const start = now()
            for (let i = 0; i < n; i++) {
              const r = await pool.acquire()
              await pool.release(r)
            }
            return Number(now() - start)
          }),
        concurrent: (fibers, batch, batches) =>
          Effect.promise(async () => {
            let resolve!: () => void
            const done = new Promise<void>((r) => (resolve = r))
            let stop = false
            const clock = batchClock(batch, batches, () => {
              stop = true
              resolve()
            })
            const loop = async () => {
              while (!stop) {
                const r = await pool.acquire()
                clock.tick()
                await pool.release(r)
              }
            }
            // Every loop calls acquire before its first await, so all are queued now. (Hand-offs are
            // all microtasks: waiting here for a macrotask would never end.)
            const loops = Array.from({ length: fibers }, loop)
            clock.arm()
            await done
            await Promise.all(loops)
            return clock.times
          })
      }
    })
}

const contenders: ReadonlyArray<Contender> = [ours("use"), ours("get"), effectPool, genericPool]
  .filter((c) => c.name.includes(process.env.BENCH_ONLY ?? ""))

// ---------------------------------------------------------------------------------------
// Scenarios

type Samples = Record<string, Array<number>>

/** 0 waiters: checkout + return of an idle resource, contenders interleaved batch by batch. */
const idle = Effect.gen(function*() {
  const lessors = yield* Effect.forEach(contenders, (c) => c.make(10))
  const samples: Samples = Object.fromEntries(contenders.map((c) => [c.name, []]))
  for (let round = 0; round < WARMUP + SAMPLES; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (round + k) % contenders.length // rotate who goes first
      const ns = yield* lessors[i]!.sequential(BATCH)
      if (round >= WARMUP) samples[contenders[i]!.name]!.push(ns / BATCH)
    }
  }
  return samples
}).pipe(Effect.scoped)

/**
 * W waiters: a pool of max 1 and W + 1 fibers leasing in a loop, so W are always queued; a
 * sample is the time of BATCH hand-offs. Contenders take turns in rounds (each round builds a
 * fresh pool and fibers, warms up, then samples).
 */
const handOff = (waiters: number) =>
  Effect.gen(function*() {
    const samples: Samples = Object.fromEntries(contenders.map((c) => [c.name, []]))
    const rounds = 4
    const perRound = Math.ceil(SAMPLES / rounds)
    const warmup = Math.ceil(WARMUP / rounds)
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = contenders[(round + k) % contenders.length]!
        yield* progress(`  round ${round} ${c.name}`)
        const times = yield* Effect.scoped(
          Effect.flatMap(c.make(1), (lessor) => lessor.concurrent(waiters + 1, BATCH, warmup + perRound))
        )
        samples[c.name]!.push(...times.slice(warmup).map((ns) => ns / BATCH))
      }
    }
    return samples
  })

/** Heap after GC before and after HEAP_LEASES leases through `Pool.use` (after as many to warm up). */
const heap = (waiters: number) =>
  Effect.gen(function*() {
    const lessor = yield* ours("use").make(waiters === 0 ? 10 : 1)
    const run = waiters === 0 ? lessor.sequential(HEAP_LEASES) : lessor.concurrent(waiters + 1, HEAP_LEASES, 1)
    yield* run
    gc()
    gc()
    const before = process.memoryUsage().heapUsed
    yield* run
    gc()
    gc()
    const after = process.memoryUsage().heapUsed
    return { waiters, leases: HEAP_LEASES, before, after, growth: after - before }
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------
// Report

const main = Effect.gen(function*() {
  const table: Record<string, Record<string, { median: number; p10: number; p90: number }>> = {}
  const record = (label: string, samples: Samples) => {
    for (const [name, xs] of Object.entries(samples)) {
      table[name] ??= {}
      table[name][label] = { median: median(xs), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9) }
    }
  }
  yield* progress("W=0 (idle)")
  record("0", yield* idle)
  for (const w of WAITERS) {
    yield* progress(`W=${w} (hand-off)`)
    record(String(w), yield* handOff(w))
  }
  yield* progress("heap")
  const heaps = [yield* heap(0), yield* heap(10)]
  return { table, heaps }
})

// The pool warns when several pools of one configuration are open; here that is on purpose.
const { heaps, table } = await Effect.runPromise(main.pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

const labels = ["0", ...WAITERS.map(String)]
const cell = (s: string, width: number) => s.padStart(width)
const lines = [
  `median ns per lease (checkout + return); ${SAMPLES} samples of ${BATCH} leases; ` +
  `W = waiters (0: idle resource; W > 0: pool of max 1, W + 1 looping fibers)`,
  "contender".padEnd(32) + labels.map((l) => cell(`W=${l}`, 12)).join("")
]
for (const [name, row] of Object.entries(table)) {
  lines.push(name.padEnd(32) + labels.map((l) => cell(row[l]!.median.toFixed(0), 12)).join(""))
}
const use = table["scoped-pool Pool.use"]!
const get = table["scoped-pool Pool.get (scoped)"]!
const effectGet = table["effect/Pool get (scoped)"]!
const flat = use["1000"]!.median / use["10"]!.median
const targets = {
  useAtMost3us: use["0"]!.median <= 3_000,
  useFlatInWaiters: flat <= 1.25,
  getNoSlowerThanEffectPool: get["0"]!.median <= effectGet["0"]!.median
}
lines.push(
  "",
  `Pool.use idle: ${use["0"]!.median.toFixed(0)} ns (target <= 3000: ${targets.useAtMost3us ? "met" : "MISSED"})`,
  `Pool.use hand-off W=1000 / W=10: ${flat.toFixed(2)} (target flat, <= 1.25: ${
    targets.useFlatInWaiters ? "met" : "MISSED"
  })`,
  `Pool.get idle ${get["0"]!.median.toFixed(0)} ns vs effect/Pool.get ${
    effectGet["0"]!.median.toFixed(0)
  } ns (target no slower: ${targets.getNoSlowerThanEffectPool ? "met" : "MISSED"})`
)
for (const h of heaps) {
  lines.push(
    `heap, ${h.leases} Pool.use leases at W=${h.waiters}: ${(h.before / 1e6).toFixed(2)} MB -> ${
      (h.after / 1e6).toFixed(2)
    } MB (growth ${(h.growth / 1024).toFixed(0)} KiB, bound ${HEAP_BOUND_BYTES / 1024} KiB)`
  )
}
process.stdout.write(lines.join("\n") + "\n")

const out = join(dirname(fileURLToPath(import.meta.url)), "results", "core.json")
mkdirSync(dirname(out), { recursive: true })
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      unit: "ns per lease (checkout + return)",
      batch: BATCH,
      samples: SAMPLES,
      scenarios: {
        "0": "one fiber, idle resource (pool of 10)",
        ...Object.fromEntries(WAITERS.map((w) => [String(w), `pool of max 1, ${w + 1} fibers leasing in a loop`]))
      },
      results: table,
      targets,
      heap: { boundBytes: HEAP_BOUND_BYTES, runs: heaps }
    },
    null,
    2
  ) + "\n"
)

if (heaps.some((h) => h.growth > HEAP_BOUND_BYTES)) {
  process.stderr.write(`heap grew by more than ${HEAP_BOUND_BYTES} bytes over ${HEAP_LEASES} leases\n`)
  process.exit(1)
}
