/**
 * The pool's state machine and its hot path.
 *
 * All state lives in plain mutable fields changed only inside synchronous sections (an
 * `Effect.sync` body or a `withFiberRuntime` callback), so every transition is atomic on the
 * single JS thread. Effects that wait (waiters, close) or do I/O (create, check, reset,
 * release) run around those sections, never inside them. The hot path — an idle resource
 * leased and returned — is two synchronous sections and allocates only what Effect needs to
 * sequence them.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import type * as Metric from "effect/Metric"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Scope from "effect/Scope"
import * as PoolError from "../PoolError.js"
import type * as PoolOptions from "../PoolOptions.js"
import type * as PoolStats from "../PoolStats.js"
import * as RuntimeGuard from "../RuntimeGuard.js"
import { Entry } from "./entry.js"
import { acquisitionSite } from "./leak.js"
import * as Lifetime from "./lifetime.js"
import { backgroundSleep } from "./timers.js"
import { Waiter, WaiterQueue } from "./waiters.js"

/** @internal */
export interface Hooks<A, E> {
  readonly acquire: Effect.Effect<A, E, Scope.Scope>
  readonly check: ((a: A) => Effect.Effect<unknown, unknown>) | undefined
  readonly reset: ((a: A) => Effect.Effect<unknown, unknown> | undefined) | undefined
  readonly isAlive: ((a: A) => boolean) | undefined
  readonly onCreate: ((a: A) => Effect.Effect<unknown, E>) | undefined
  readonly onReconnectFailed: ((e: E) => Effect.Effect<unknown>) | undefined
  readonly failFast: ((e: E, pool: { readonly size: number }) => boolean) | undefined
}

/** @internal */
export interface Runtime {
  readonly clock: Clock.Clock
  readonly guard: RuntimeGuard.RuntimeGuard
  /** Forks a background fiber (creation, maintenance) that close interrupts. */
  readonly runBackground: (effect: Effect.Effect<unknown, unknown>) => unknown
  /** Forks a retirement, which close awaits. */
  readonly runRetirement: (effect: Effect.Effect<void>) => unknown
  readonly background: FiberSet.FiberSet<unknown, unknown>
  readonly retirements: FiberSet.FiberSet<void, never>
  readonly metrics: {
    readonly size: Metric.Metric.Gauge<number>
    readonly idle: Metric.Metric.Gauge<number>
    readonly inUse: Metric.Metric.Gauge<number>
    readonly waiting: Metric.Metric.Gauge<number>
    readonly acquireWait: Metric.Metric.Histogram<number>
    readonly leaseDuration: Metric.Metric.Histogram<number>
  }
}

type Retired = Record<PoolOptions.RetireReason, number>

/** @internal */
export const TypeId: "~@scoped-pool/core/Pool" = "~@scoped-pool/core/Pool" as const

/** @internal */
export class PoolImpl<A, E> implements Pipeable {
  readonly [TypeId] = TypeId
  min: number
  max: number
  closed = false

  private readonly idle: Array<Entry<A>> = []
  private readonly live = new Set<Entry<A>>()
  private readonly byValue = new Map<A, Entry<A>>()
  private readonly waiters = new WaiterQueue<A, E | PoolError.PoolError>()
  private readyWaiters: Array<() => void> = []
  private pending = 0
  private inUse = 0
  private nextId = 1
  private lastCreationError: { readonly error: E } | undefined = undefined
  private failingSince: number | undefined = undefined
  private closeDone: Deferred.Deferred<void> | undefined = undefined
  private drained: Deferred.Deferred<void> | undefined = undefined

  // counters for stats
  private requests = 0
  private requestsQueued = 0
  private waitTimeTotal = 0
  private waitTimeMax = 0
  private timeouts = 0
  private rejected = 0
  private created = 0
  private creationErrors = 0
  private usageTimeTotal = 0
  private readonly retired: Retired = {
    expired: 0,
    idle: 0,
    dead: 0,
    "check-failed": 0,
    "reset-failed": 0,
    invalidated: 0,
    closed: 0
  }

  private readonly closedError: Effect.Effect<never, PoolError.PoolClosed>

  constructor(
    readonly options: PoolOptions.Resolved,
    private readonly hooks: Hooks<A, E>,
    private readonly rt: Runtime
  ) {
    this.min = options.min
    this.max = options.max
    this.closedError = Effect.fail(new PoolError.PoolClosed({ pool: options.name }))
    this.create = this.makeCreate()
  }

  get name(): string {
    return this.options.name
  }

  pipe() {
    return pipeArguments(this, arguments)
  }

  /**
   * Runs `f` with a leased resource, returned when `f` ends. Opens no Scope: the hot path. An
   * idle resource is leased and returned in two synchronous sections, with no Effect between
   * them but `f` itself.
   */
  use<B, E2, R2>(f: (a: A) => Effect.Effect<B, E2, R2>): Effect.Effect<B, E | E2 | PoolError.PoolError, R2> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.withFiberRuntime((fiber) => {
        const denied = this.admit(fiber)
        if (denied !== undefined) return denied
        const now = this.now()
        const entry = this.takeIdle(fiber, now)
        if (entry !== undefined && !this.needsCheck(entry, now)) return this.runLeased(entry, restore, f)
        const leased = entry === undefined ? this.wait(fiber, now) : this.checkThenLease(entry, fiber)
        return Effect.flatMap(leased, (entry) => this.runLeased(entry, restore, f))
      })
    )
  }

  private runLeased<B, E2, R2>(
    entry: Entry<A>,
    restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>,
    f: (a: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E2 | PoolError.PoolError, R2> {
    return Effect.flatMap(Effect.exit(restore(f(entry.value))), (exit): Effect.Effect<B, E2 | PoolError.PoolError> => {
      if (entry.revoked) return Effect.fail(this.revokedError(Exit.isFailure(exit) ? exit.cause : undefined))
      const reset = this.hooks.reset?.(entry.value)
      if (reset !== undefined) return Effect.zipRight(this.resetThenReturn(entry, reset), exit)
      this.returnEntry(entry)
      return exit
    })
  }

  private now(): number {
    return this.rt.clock.unsafeCurrentTimeMillis()
  }

  // ---------------------------------------------------------------------------------------
  // Checkout

  /** Fails a caller of a closed pool or of another runtime; counts the request otherwise. */
  private admit(fiber: Fiber.RuntimeFiber<any, any>): Effect.Effect<never, PoolError.PoolError> | undefined {
    if (this.closed) return this.closedError
    if (!this.rt.guard.owns(fiber)) return Effect.fail(this.mismatch(fiber))
    this.requests++
    return undefined
  }

  /** Leases an entry: an idle one at once, or waits (FIFO) for one. */
  readonly acquire: Effect.Effect<Entry<A>, E | PoolError.PoolError> = Effect.withFiberRuntime((fiber) =>
    this.admit(fiber) ?? this.leaseOrWait(fiber)
  )

  private leaseOrWait(fiber: Fiber.RuntimeFiber<any, any>): Effect.Effect<Entry<A>, E | PoolError.PoolError> {
    const now = this.now()
    const entry = this.takeIdle(fiber, now)
    if (entry === undefined) return this.wait(fiber, now)
    return this.needsCheck(entry, now) ? this.checkThenLease(entry, fiber) : Effect.succeed(entry)
  }

  /** A lease for the rest of the current scope. */
  // Scope.addFinalizer rather than Effect.acquireRelease: the latter diffs FiberRefs per call.
  readonly get: Effect.Effect<A, E | PoolError.PoolError, Scope.Scope> = Effect.uninterruptible(
    Effect.flatMap(
      Effect.scope,
      (scope) =>
        Effect.flatMap(this.acquire, (entry) => Effect.as(Scope.addFinalizer(scope, this.release(entry)), entry.value))
    )
  )

  /** Leases the most recently used idle entry, retiring those found expired or dead on the way. */
  private takeIdle(fiber: Fiber.RuntimeFiber<any, any>, now: number): Entry<A> | undefined {
    let entry: Entry<A> | undefined
    while ((entry = this.idle.pop()) !== undefined) {
      const reason = this.idleRetireReason(entry, now)
      if (reason === undefined) {
        this.lease(entry, fiber, now)
        return entry
      }
      this.retire(entry, reason)
    }
    return undefined
  }

  private needsCheck(entry: Entry<A>, now: number): boolean {
    return this.hooks.check !== undefined && Lifetime.needsCheck(entry.lastUsedAt, now, this.options.checkAfterIdle)
  }

  private checkThenLease(
    entry: Entry<A>,
    fiber: Fiber.RuntimeFiber<any, any>
  ): Effect.Effect<Entry<A>, E | PoolError.PoolError> {
    return Effect.matchCauseEffect(this.hooks.check!(entry.value), {
      onFailure: () =>
        Effect.suspend(() => {
          this.unlease(entry, this.now())
          this.retire(entry, "check-failed")
          return this.closed ? this.closedError : this.leaseOrWait(fiber)
        }),
      onSuccess: () => Effect.succeed(entry)
    })
  }

  private lease(entry: Entry<A>, fiber: Fiber.RuntimeFiber<any, any> | undefined, now: number): void {
    entry.state = "leased"
    entry.leasedAt = now
    entry.holder = fiber === undefined ? undefined : fiber.id()
    if (this.options.leakThreshold !== undefined && fiber !== undefined) {
      entry.site = acquisitionSite(fiber)
      entry.leakReported = false
    }
    this.inUse++
  }

  private unlease(entry: Entry<A>, now: number): void {
    entry.state = "idle"
    entry.holder = undefined
    this.inUse--
    const held = now - entry.leasedAt
    this.usageTimeTotal += held
    this.rt.metrics.leaseDuration.unsafeUpdate(held, [])
    if (this.closed && this.inUse === 0 && this.drained !== undefined) Deferred.unsafeDone(this.drained, Exit.void)
  }

  private wait(fiber: Fiber.RuntimeFiber<any, any>, now: number): Effect.Effect<Entry<A>, E | PoolError.PoolError> {
    if (this.waiters.size >= this.options.maxWaiting) {
      this.rejected++
      return Effect.fail(
        new PoolError.PoolFull({ pool: this.name, waiting: this.waiters.size, maxWaiting: this.options.maxWaiting })
      )
    }
    this.requestsQueued++
    const waiter = new Waiter<A, E | PoolError.PoolError>(now, fiber)
    this.waiters.push(waiter)
    this.grow()
    this.wakeExpirer?.()
    return Effect.async<Entry<A>, E | PoolError.PoolError>((resume) => {
      if (waiter.result !== undefined) resume(waiter.result)
      else waiter.resume = resume
    }).pipe(
      Effect.interruptible,
      Effect.onExit((exit) => this.waitEnded(waiter, exit))
    )
  }

  private waitEnded(waiter: Waiter<A, E | PoolError.PoolError>, exit: Exit.Exit<Entry<A>, unknown>) {
    return Effect.sync(() => {
      const now = this.now()
      const waited = now - waiter.since
      this.waitTimeTotal += waited
      if (waited > this.waitTimeMax) this.waitTimeMax = waited
      this.rt.metrics.acquireWait.unsafeUpdate(waited, [])
      if (Exit.isSuccess(exit)) return
      // The waiter gave up (interrupt, timeout). If an entry was handed to it in the same
      // instant, it goes back to the pool: never lost (psycopg issue 509).
      if (!this.waiters.leave(waiter) && waiter.entry !== undefined) {
        this.unlease(waiter.entry, now)
        this.offer(waiter.entry)
      }
    })
  }

  /**
   * Fails waiters with `PoolTimeout` at their deadline. Waiters queue in arrival order and all
   * wait `acquireTimeout`, so deadlines follow queue order: one fiber sleeping until the oldest
   * waiter's deadline serves them all, instead of a timer (and a race) per waiter.
   */
  readonly expireWaiters: Effect.Effect<never> = Effect.suspend(() => {
    const head = this.waiters.peek()
    if (head === undefined) {
      // Nothing waits: sleep until a waiter arrives.
      return Effect.async<void>((resume) => {
        this.wakeExpirer = () => {
          this.wakeExpirer = undefined
          resume(Effect.void)
        }
        return Effect.sync(() => {
          this.wakeExpirer = undefined
        })
      })
    }
    const remaining = head.since + this.options.acquireTimeout - this.now()
    // Unref'd like every timer of the pool's own: what keeps the process alive while a caller
    // waits is the work it waits for (a connect, a holder's statement), not this timer.
    if (remaining > 0) return backgroundSleep(this.rt.clock, remaining)
    if (this.waiters.leave(head)) this.settle(head, Effect.fail(this.timeoutError(head)))
    return Effect.void
  }).pipe(Effect.forever)

  private wakeExpirer: (() => void) | undefined = undefined

  private timeoutError(waiter: Waiter<A, E | PoolError.PoolError>): PoolError.PoolTimeout {
    this.timeouts++
    const now = this.now()
    return new PoolError.PoolTimeout({
      pool: this.name,
      elapsedMillis: now - waiter.since,
      size: this.live.size,
      max: this.max,
      inUse: this.inUse,
      idle: this.idle.length,
      waiting: Math.max(0, this.waiters.size - (waiter.settled ? 0 : 1)),
      holders: this.holders(now),
      ...(this.failingSince !== undefined && this.lastCreationError !== undefined
        ? { cause: this.lastCreationError.error }
        : {})
    })
  }

  private holders(now: number): Array<PoolError.Holder> {
    const out: Array<PoolError.Holder> = []
    for (const entry of this.live) {
      if (entry.state === "leased") {
        out.push({ fiber: holderName(entry), heldMillis: now - entry.leasedAt, site: entry.site })
      }
    }
    return out.sort((a, b) => b.heldMillis - a.heldMillis).slice(0, 10)
  }

  private mismatch(fiber: Fiber.RuntimeFiber<any, any>): PoolError.PoolRuntimeMismatch {
    return new PoolError.PoolRuntimeMismatch({
      pool: this.name,
      ownerRuntime: this.rt.guard.owner.id,
      callerRuntime: RuntimeGuard.tokenOf(fiber)?.id
    })
  }

  // ---------------------------------------------------------------------------------------
  // Return

  /** Returns a leased entry: back to a waiter or the idle stack, or retired. */
  release(entry: Entry<A>): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (entry.revoked) return Effect.void
      const reset = this.hooks.reset?.(entry.value)
      if (reset !== undefined) return this.resetThenReturn(entry, reset)
      this.returnEntry(entry)
      return Effect.void
    })
  }

  private resetThenReturn(entry: Entry<A>, reset: Effect.Effect<unknown, unknown>): Effect.Effect<void> {
    return Effect.matchCause(reset, {
      onFailure: () => this.returnEntry(entry, "reset-failed"),
      onSuccess: () => this.returnEntry(entry)
    })
  }

  private returnEntry(entry: Entry<A>, failed?: PoolOptions.RetireReason): void {
    if (entry.revoked || entry.state !== "leased") return
    const now = this.now()
    this.unlease(entry, now)
    entry.uses++
    entry.lastUsedAt = now
    const reason = failed ?? this.returnRetireReason(entry, now)
    if (reason !== undefined) this.retire(entry, reason)
    else this.offer(entry)
  }

  private returnRetireReason(entry: Entry<A>, now: number): PoolOptions.RetireReason | undefined {
    if (this.closed) return "closed"
    if (entry.invalidated) return "invalidated"
    if (this.hooks.isAlive !== undefined && !this.hooks.isAlive(entry.value)) return "dead"
    if (Lifetime.isExpired(entry.expiresAt, now) || entry.uses >= this.options.maxUses) return "expired"
    if (this.live.size > this.max) return "idle"
    return undefined
  }

  private idleRetireReason(entry: Entry<A>, now: number): PoolOptions.RetireReason | undefined {
    if (entry.invalidated) return "invalidated"
    if (this.hooks.isAlive !== undefined && !this.hooks.isAlive(entry.value)) return "dead"
    if (Lifetime.isExpired(entry.expiresAt, now)) return "expired"
    return undefined
  }

  /** Hands an available entry to the oldest waiter, or puts it on the idle stack. */
  private offer(entry: Entry<A>): void {
    if (this.closed) return this.retire(entry, "closed")
    const waiter = this.waiters.take()
    if (waiter === undefined) {
      entry.state = "idle"
      this.idle.push(entry)
      return
    }
    this.lease(entry, waiter.fiber, this.now())
    waiter.entry = entry
    waiter.result = Effect.succeed(entry)
    waiter.resume?.(waiter.result)
  }

  // ---------------------------------------------------------------------------------------
  // Growth and retirement

  /** Starts as many creations as waiters and `min` need, within `max`. */
  grow(): void {
    // Re-evaluated after every start: a creation can complete (and call grow) synchronously.
    while (this.wantsAnother()) {
      this.pending++
      this.rt.runBackground(this.create)
    }
  }

  private wantsAnother(): boolean {
    if (this.closed) return false
    const size = this.live.size + this.pending
    if (size >= this.max) return false
    // While creation fails, retry with one fiber at a time instead of hammering the target.
    if (this.failingSince !== undefined && this.pending > 0) return false
    return size < this.min || this.waiters.size > this.pending
  }

  /** Whether a pending creation should (still) be attempted: it is wanted and fits in `max`. */
  private stillNeeded(): boolean {
    return !this.closed && this.live.size + this.pending <= this.max &&
      (this.waiters.size > 0 || this.live.size + this.pending <= this.min)
  }

  // One creation attempt. A success is registered in the same uninterruptible region, so an
  // interruption (close) can never fall between the resource's acquisition and its registration.
  private readonly attempt: Effect.Effect<void, E> = Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Scope.make(), (scope) =>
      restore(Scope.extend(this.hooks.acquire, scope)).pipe(
        Effect.tap((value) => this.hooks.onCreate?.(value) ?? Effect.void),
        Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void),
        Effect.flatMap((value) => {
          const now = this.now()
          const expires = Lifetime.expiresAt(now, this.options.maxLifetime, this.options.lifetimeJitter, Math.random())
          return this.created_(new Entry(this.nextId++, value, scope, now, expires))
        })
      ))
  )

  private readonly create: Effect.Effect<void>
  private makeCreate(): Effect.Effect<void> {
    return this.attempt.pipe(
      Effect.tapError((error) => this.creationFailed(error)),
      Effect.retry({ schedule: this.options.retrySchedule, while: () => this.stillNeeded() }),
      // Given up, or interrupted by close: no longer pending (a success counted itself in created_).
      Effect.onExit((exit) => Exit.isFailure(exit) ? Effect.sync(() => this.pending--) : Effect.void),
      Effect.ignore
    )
  }

  private created_(entry: Entry<A>): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.pending--
      this.created++
      this.failingSince = undefined
      this.live.add(entry)
      this.byValue.set(entry.value, entry)
      if (this.live.size >= this.min && this.readyWaiters.length > 0) {
        const ready = this.readyWaiters
        this.readyWaiters = []
        for (const resume of ready) resume()
      }
      if (this.live.size > this.max) this.retire(entry, "idle") // resized down while it was being created
      else this.offer(entry)
      // A success after failures: creation went one at a time, so more waiters may need some.
      this.grow()
      return Effect.logDebug(`created resource #${entry.id}`).pipe(
        Effect.annotateLogs({ pool: this.name, resource: entry.id, size: this.live.size })
      )
    })
  }

  private creationFailed(error: E): Effect.Effect<void> {
    return Effect.suspend(() => {
      const now = this.now()
      this.creationErrors++
      this.lastCreationError = { error }
      this.failingSince ??= now
      const log = Effect.logWarning("creating a resource failed; retrying with backoff").pipe(
        Effect.annotateLogs({ pool: this.name, error: String(error instanceof Error ? error.message : error) })
      )
      if (this.hooks.failFast?.(error, { size: this.live.size }) === true) {
        for (const waiter of this.waiters.takeAll()) this.settle(waiter, Effect.fail(error))
      }
      if (now - this.failingSince < this.options.reconnectTimeout) return log
      // Failing for reconnectTimeout: waiters fail with the creation error instead of waiting on.
      this.failingSince = now
      for (const waiter of this.waiters.takeAll()) this.settle(waiter, Effect.fail(error))
      return Effect.zipRight(log, this.hooks.onReconnectFailed?.(error) ?? Effect.void).pipe(Effect.ignore)
    })
  }

  private settle(waiter: Waiter<A, E | PoolError.PoolError>, result: Effect.Effect<never, E | PoolError.PoolError>) {
    waiter.result = result
    waiter.resume?.(result)
  }

  /** Takes an entry out of the pool and releases its resource in the background. */
  retire(entry: Entry<A>, reason: PoolOptions.RetireReason): void {
    if (entry.state === "retired") return
    if (entry.state === "leased") this.unlease(entry, this.now())
    entry.state = "retired"
    this.live.delete(entry)
    this.byValue.delete(entry.value)
    this.retired[reason]++
    const log = reason === "closed" ? Effect.logDebug : Effect.logInfo
    this.rt.runRetirement(
      Scope.close(entry.scope, Exit.void).pipe(
        Effect.zipRight(log(`retired resource #${entry.id}`)),
        Effect.catchAllCause((cause) => Effect.logWarning("releasing a resource failed", cause)),
        Effect.annotateLogs({ pool: this.name, resource: entry.id, reason }),
        Effect.uninterruptible
      )
    )
    this.grow()
  }

  // ---------------------------------------------------------------------------------------
  // Maintenance, resize, invalidate, drain

  /** One maintenance pass: retire expired and idle entries, refill to `min`, report leaks. */
  maintain(): Array<Entry<A>> {
    const now = this.now()
    // The idle stack is LIFO, so its bottom holds the entries idle longest.
    for (let i = 0; i < this.idle.length;) {
      const entry = this.idle[i]!
      const reason = this.idleRetireReason(entry, now) ??
        (now - entry.lastUsedAt >= this.options.idleTimeout && this.live.size > this.min ? "idle" : undefined)
      if (reason === undefined) {
        i++
        continue
      }
      this.idle.splice(i, 1)
      this.retire(entry, reason)
    }
    this.grow()
    this.updateGauges()
    const leaks: Array<Entry<A>> = []
    if (this.options.leakThreshold !== undefined) {
      for (const entry of this.live) {
        if (entry.state === "leased" && !entry.leakReported && now - entry.leasedAt >= this.options.leakThreshold) {
          entry.leakReported = true
          leaks.push(entry)
        }
      }
    }
    return leaks
  }

  updateGauges(): void {
    this.rt.metrics.size.unsafeUpdate(this.live.size, [])
    this.rt.metrics.idle.unsafeUpdate(this.idle.length, [])
    this.rt.metrics.inUse.unsafeUpdate(this.inUse, [])
    this.rt.metrics.waiting.unsafeUpdate(this.waiters.size, [])
  }

  resize(min: number, max: number): void {
    this.min = min
    this.max = max
    while (this.live.size > this.max && this.idle.length > 0) this.retire(this.idle.shift()!, "idle")
    this.grow()
  }

  invalidate(value: A): void {
    const entry = this.byValue.get(value)
    if (entry === undefined) return
    entry.invalidated = true
    if (entry.state === "idle") {
      this.idle.splice(this.idle.indexOf(entry), 1)
      this.retire(entry, "invalidated")
    }
  }

  drain(): void {
    for (const entry of this.live) entry.invalidated = true
    for (const entry of this.idle.splice(0)) this.retire(entry, "invalidated")
  }

  /** Resolves once `min` resources are open; fails with `PoolTimeout` after `timeout`. */
  waitReady(timeout: Duration.DurationInput): Effect.Effect<void, PoolError.PoolTimeout | PoolError.PoolClosed> {
    return Effect.suspend(() => {
      if (this.closed) return this.closedError
      if (this.live.size >= this.min) return Effect.void
      const since = this.now()
      const waiter = new Waiter<A, E | PoolError.PoolError>(since, undefined)
      return Effect.async<void>((resume) => {
        const done = () => resume(Effect.void)
        this.readyWaiters.push(done)
        return Effect.sync(() => {
          this.readyWaiters = this.readyWaiters.filter((f) => f !== done)
        })
      }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => this.timeoutError(waiter) }),
        Effect.zipRight(Effect.suspend(() => this.closed ? this.closedError : Effect.void))
      )
    })
  }

  stats(): PoolStats.Stats {
    return {
      name: this.name,
      size: this.live.size,
      min: this.min,
      max: this.max,
      idle: this.idle.length,
      inUse: this.inUse,
      waiting: this.waiters.size,
      pending: this.pending,
      requests: this.requests,
      requestsQueued: this.requestsQueued,
      waitTimeTotal: this.waitTimeTotal,
      waitTimeMax: this.waitTimeMax,
      timeouts: this.timeouts,
      rejected: this.rejected,
      created: this.created,
      creationErrors: this.creationErrors,
      retired: { ...this.retired },
      usageTimeTotal: this.usageTimeTotal,
      closed: this.closed
    }
  }

  leakWarning(entry: Entry<A>): Effect.Effect<void> {
    return Effect.logWarning(
      `resource #${entry.id} leased for over ${this.options.leakThreshold} ms by fiber ${
        holderName(entry)
      } at ${entry.site}; ` +
        "is it returned? (Pool.get holds it until its scope closes)"
    ).pipe(Effect.annotateLogs({ pool: this.name, resource: entry.id }))
  }

  // ---------------------------------------------------------------------------------------
  // Close

  /**
   * Closes the pool: callers fail with `PoolClosed` at once, idle resources are released
   * concurrently, leases still out after `closeTimeout` are force-released under their holders.
   * Idempotent; concurrent callers all wait for the one close.
   */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    if (this.closeDone !== undefined) return Deferred.await(this.closeDone)
    const done = Deferred.unsafeMake<void>(FiberId.none)
    this.closeDone = done
    return this.closeOnce.pipe(Effect.ensuring(Deferred.done(done, Exit.void)), Effect.uninterruptible)
  })

  private readonly closeOnce: Effect.Effect<void> = Effect.suspend(() => {
    this.closed = true
    this.drained = Deferred.unsafeMake<void>(FiberId.none)
    if (this.inUse === 0) Deferred.unsafeDone(this.drained, Exit.void)
    for (const waiter of this.waiters.takeAll()) this.settle(waiter, this.closedError)
    for (const entry of this.idle.splice(0)) this.retire(entry, "closed")
    const drained = this.drained
    return Effect.gen(this, function*() {
      yield* this.interruptBackground
      const returned = yield* Deferred.await(drained).pipe(
        Effect.timeoutOption(Duration.millis(this.options.closeTimeout)),
        Effect.interruptible
      )
      if (returned._tag === "None") yield* this.revokeLeases
      yield* FiberSet.awaitEmpty(this.rt.retirements)
      this.updateGauges()
    })
  })

  private readonly interruptBackground = Effect.suspend(() => FiberSet.clear(this.rt.background))

  private readonly revokeLeases: Effect.Effect<void> = Effect.suspend(() => {
    const leased = [...this.live].filter((entry) => entry.state === "leased")
    for (const entry of leased) {
      entry.revoked = true
      this.retire(entry, "closed")
    }
    return Effect.logWarning(
      `closed with ${leased.length} lease(s) still held after closeTimeout (${this.options.closeTimeout} ms); ` +
        "their resources were released under their holders"
    ).pipe(Effect.annotateLogs({ pool: this.name }), Effect.when(() => leased.length > 0))
  })

  /** The error a holder gets when its lease was revoked by close. */
  revokedError(cause: unknown): PoolError.LeaseRevoked {
    return new PoolError.LeaseRevoked({ pool: this.name, closeTimeoutMillis: this.options.closeTimeout, cause })
  }
}

const holderName = (entry: Entry<unknown>): string =>
  entry.holder === undefined ? "unknown" : FiberId.threadName(entry.holder)
