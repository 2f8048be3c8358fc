/**
 * The runtime guard's cost on the hot path: `Pool.use` of an idle fake resource with the
 * guard as built, against the same pool whose guard is swapped for one that always passes.
 * Interleaved batches; the median ns/op of each and the difference.
 *
 *   pnpm exec tsx bench/guard.ts
 */
import * as Pool from "@scoped-pool/core/Pool"
import * as Effect from "effect/Effect"

const batch = 2_000
const samples = 300

const measure = (pool: Pool.Pool<{ readonly n: number }>) => {
  const f = (r: { readonly n: number }) => Effect.succeed(r.n)
  return Effect.gen(function*() {
    const start = performance.now()
    for (let i = 0; i < batch; i++) yield* pool.use(f)
    return ((performance.now() - start) * 1e6) / batch
  })
}

const median = (xs: Array<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const program = Effect.gen(function*() {
  const guarded = yield* Pool.make({ acquire: Effect.succeed({ n: 1 }), min: 1, max: 1, name: "guarded" })
  const unguarded = yield* Pool.make({ acquire: Effect.succeed({ n: 1 }), min: 1, max: 1, name: "unguarded" })
  // The measurement's only reach into internals: a guard that passes every fiber.
  const rt = (unguarded as unknown as { state: { rt: { guard: { owns: (fiber: unknown) => boolean } } } }).state.rt
  rt.guard = { ...rt.guard, owns: () => true }
  yield* Pool.waitReady(guarded, "1 second")
  yield* Pool.waitReady(unguarded, "1 second")
  for (let i = 0; i < 50; i++) {
    yield* measure(guarded)
    yield* measure(unguarded)
  }
  const a: Array<number> = []
  const b: Array<number> = []
  for (let i = 0; i < samples; i++) {
    a.push(yield* measure(guarded))
    b.push(yield* measure(unguarded))
  }
  const withGuard = median(a)
  const withoutGuard = median(b)
  const overhead = (withGuard - withoutGuard) / withoutGuard
  console.log(
    `Pool.use median: with guard ${withGuard.toFixed(0)} ns/op, without ${withoutGuard.toFixed(0)} ns/op, ` +
      `guard cost ${(overhead * 100).toFixed(1)} %`
  )
}).pipe(Effect.scoped)

Effect.runPromise(program)
