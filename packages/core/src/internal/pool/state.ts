/**
 * The pool's state: every mutable field, and the few primitives all concerns share.
 *
 * Fields change only inside synchronous sections (an `Effect.sync` body, a `withFiberRuntime`
 * callback, a continuation), so every transition is atomic on the single JS thread. Effects
 * that wait (waiters, close) or run user code (create, check, reset, release) run around those
 * sections, never inside them. An entry moves only through {@link PoolState.transition}, the
 * one place that keeps the counts, the lease data, the metrics and the close's drain in step.
 *
 * The concerns are split into modules that take this state: `checkout` (leases, waiting,
 * deadlines), `handoff` (returns, hand-off to waiters), `growth` (creation, retry, readiness),
 * `retirement` (retiring, maintenance, resize), `close`, and `report` (stats and errors).
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as MetricHook from "effect/MetricHook"
import * as PoolError from "../../PoolError.js"
import type * as PoolOptions from "../../PoolOptions.js"
import type * as RuntimeGuard from "../../RuntimeGuard.js"
import { acquisitionSite } from "../leak.js"
import type { SleepControl } from "../timers.js"
import { canMove, type Entry, type EntryState, isLeased, Sharer } from "./entry.js"
import type { Hooks } from "./hooks.js"
import type { Metrics } from "./metrics.js"
import { type Waiter, WaiterQueue } from "./waiters.js"

/** What the pool needs of the runtime that built it. @internal */
export interface Runtime {
  readonly clock: Clock.Clock
  readonly guard: RuntimeGuard.RuntimeGuard
  /**
   * Forks background work (creation, maintenance, the expirer) on the pool's runtime (the
   * app's logger and tracer): close interrupts it, then awaits it, bounded.
   */
  readonly runBackground: (effect: Effect.Effect<unknown, unknown>) => Fiber.RuntimeFiber<unknown, unknown>
  /** Forks a retirement (a resource's release) on the pool's runtime: close awaits it, bounded. */
  readonly runRetirement: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<unknown, unknown>
  /** The background fibers still running. */
  readonly background: ReadonlySet<Fiber.RuntimeFiber<unknown, unknown>>
  /** The retirements still running. */
  readonly retirements: ReadonlySet<Fiber.RuntimeFiber<unknown, unknown>>
  readonly metrics: Metrics
}

/**
 * A period in which creating resources keeps failing. `retrying` while a creation backs off to
 * try again; `given-up` once `retrySchedule` ended: then nothing is created until the next
 * request or maintenance pass, so that a schedule that gives up at once cannot spin.
 *
 * @internal
 */
export interface Outage {
  phase: "retrying" | "given-up"
  readonly since: number
  /** Failed attempts so far. */
  failures: number
  /** The last failure's cause, and its error (the typed failure, else the defect). */
  lastCause: Cause.Cause<unknown>
  lastError: unknown
  /** When waiters were last failed for reconnectTimeout (the outage's start at first). */
  reconnectSince: number
  /**
   * Whether the outage was reported with its one Warning. Not while every failure went straight
   * to waiting callers (failFast): they report it themselves.
   */
  reported: boolean
}

/** Durations in milliseconds, kept until they are published to a histogram in seconds. */
class DurationBuffer {
  private readonly millis = new Float64Array(1024)
  private size = 0
  /** Adds one; returns true when the buffer is full. */
  add(millis: number): boolean {
    this.millis[this.size++] = millis
    return this.size === this.millis.length
  }
  flushTo(histogram: MetricHook.MetricHook.Histogram): void {
    for (let i = 0; i < this.size; i++) histogram.update(this.millis[i]! / 1000)
    this.size = 0
  }
}

/** What a caller of `waitReady` is told. @internal */
export type ReadyResume = (result: Effect.Effect<void, PoolError.PoolClosed>) => void

/** @internal */
export class PoolState<A, E> {
  min: number
  max: number
  /** Set when close begins: from then on nothing is leased, created or kept. */
  closed = false

  readonly idle: Array<Entry<A>> = []
  readonly live = new Set<Entry<A>>()
  /** Entries leased through `useShared` that more leases may join (their `sharers` is set). */
  readonly shared = new Set<Entry<A>>()
  readonly byValue = new Map<A, Entry<A>>()
  readonly waiters = new WaiterQueue<A, E | PoolError.PoolError>()
  readyWaiters: Array<ReadyResume> = []
  /** Creations under way (counted in the size against `max`). */
  pending = 0
  inUse = 0
  nextId = 1

  /** Set while creation fails; cleared by the next success. */
  outage: Outage | undefined = undefined
  /** Whether a creation fiber is backing off to retry: while creation fails, only that one runs. */
  retrying = false

  /** The deadline the expirer sleeps until (`undefined`: it sleeps until woken). */
  expirerTarget: number | undefined = undefined
  /** The expirer's sleep: woken early by a waiter with an earlier deadline; keeps the process alive while one waits. */
  readonly expirer: SleepControl = { wake: undefined, keepAlive: undefined }

  closeDone: Deferred.Deferred<void> | undefined = undefined
  /** Completed once no lease is out, after close began. */
  drained: Deferred.Deferred<void> | undefined = undefined

  // Counters for stats.
  requests = 0
  requestsQueued = 0
  waitTimeTotal = 0
  waitTimeMax = 0
  timeouts = 0
  rejected = 0
  created = 0
  creationErrors = 0
  /** Leases that joined a resource already leased (`useShared`). */
  sharedLeases = 0
  usageTimeTotal = 0
  readonly retired: Record<PoolOptions.RetireReason, number> = {
    expired: 0,
    idle: 0,
    dead: 0,
    "check-failed": 0,
    "reset-failed": 0,
    invalidated: 0,
    closed: 0
  }

  readonly closedError: Effect.Effect<never, PoolError.PoolClosed>
  /** One creation (attempts and retries until it succeeds, gives up or is interrupted). */
  readonly create: Effect.Effect<unknown>

  constructor(
    readonly options: PoolOptions.Resolved,
    readonly hooks: Hooks<A, E>,
    readonly rt: Runtime,
    makeCreate: (state: PoolState<A, E>) => Effect.Effect<unknown>
  ) {
    this.min = options.min
    this.max = options.max
    this.closedError = Effect.fail(new PoolError.PoolClosed({ pool: options.name }))
    this.create = makeCreate(this)
  }

  get name(): string {
    return this.options.name
  }

  now(): number {
    return this.rt.clock.unsafeCurrentTimeMillis()
  }

  /**
   * Moves an entry to `next`: the one transition function. A lease that begins records its
   * holder (and, with leak detection, where it was taken); a lease that ends is counted and
   * measured, and the last one out during close completes the drain.
   */
  transition(entry: Entry<A>, next: EntryState, holder?: Fiber.RuntimeFiber<any, any>, now?: number): void {
    const from = entry.state
    if (!canMove(from, next)) {
      throw new Error(`@scoped-pool/core bug: resource #${entry.id} cannot move from ${from} to ${next}`)
    }
    entry.state = next
    if (next === "leased" && from === "idle") {
      this.inUse++
      entry.leasedAt = now ?? this.now()
      entry.leakReported = false
      if (holder === undefined) {
        entry.holder = undefined
        entry.site = undefined
      } else {
        entry.holder = holder.id()
        entry.site = this.options.leakThreshold === undefined ? undefined : acquisitionSite(holder)
      }
    } else if (isLeased(from) && !isLeased(next)) {
      const at = now ?? this.now()
      if (entry.sharers === undefined) this.recordLease(at - entry.leasedAt)
      else {
        // Revoked under its sharers: none of them can leave it normally now; each lease is measured here.
        for (const sharer of entry.sharers) this.recordLease(at - sharer.since)
        entry.sharers = undefined
        this.shared.delete(entry)
      }
      this.inUse--
      entry.holder = undefined
      if (next === "idle") {
        entry.uses++
        entry.lastUsedAt = at
      }
      if (this.inUse === 0 && this.drained !== undefined) Deferred.unsafeDone(this.drained, Exit.void)
    }
  }

  /**
   * Makes the lease an entry was just given (`transition` to `leased`) a shared one: its
   * first sharer, whom more leases may join.
   */
  beginShared(entry: Entry<A>): Sharer<A> {
    const sharer = new Sharer(entry, entry.holder!, entry.leasedAt, entry.site)
    entry.sharers = [sharer]
    this.shared.add(entry)
    return sharer
  }

  /** Adds a lease to a shared entry. */
  joinShared(entry: Entry<A>, holder: Fiber.RuntimeFiber<any, any>, now: number): Sharer<A> {
    const site = this.options.leakThreshold === undefined ? undefined : acquisitionSite(holder)
    const sharer = new Sharer(entry, holder.id(), now, site)
    entry.sharers!.push(sharer)
    this.sharedLeases++
    return sharer
  }

  /**
   * Ends one shared lease. Returns true when it was the last: then the entry's lease ends as an
   * exclusive one does (its reset, then `transition` out of `leased`, which measures this last
   * lease); before, each lease that ends is measured and counted as a use here.
   */
  leaveShared(sharer: Sharer<A>, now: number): boolean {
    const entry = sharer.entry
    const sharers = entry.sharers
    const at = sharers === undefined ? -1 : sharers.indexOf(sharer)
    if (at === -1) return false
    sharers!.splice(at, 1)
    if (sharers!.length > 0) {
      this.recordLease(now - sharer.since)
      entry.uses++
      return false
    }
    // The entry's lease data become the last lease's: its reset and return are this lease's.
    entry.sharers = undefined
    this.shared.delete(entry)
    entry.leasedAt = sharer.since
    entry.holder = sharer.holder
    entry.site = sharer.site
    entry.leakReported = sharer.leakReported
    return true
  }

  /** Settles a waiter that gets no entry (it failed, or the pool closed). */
  settle(waiter: Waiter<A, E | PoolError.PoolError>, result: Effect.Effect<never, E | PoolError.PoolError>): void {
    waiter.result = result
    waiter.resume?.(result)
  }

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
    // While creation fails, one fiber at a time retries instead of each waiter hammering the target.
    if (this.outage !== undefined && (this.pending > 0 || this.outage.phase === "given-up")) return false
    return size < this.min || this.waiters.size > this.pending
  }

  /** After `retrySchedule` gave up, lets a new request or a maintenance pass try again. */
  retryAgain(): void {
    if (this.outage !== undefined) this.outage.phase = "retrying"
  }

  /** Whether a creation under way should (still) be attempted: it is wanted and fits in `max`. */
  stillNeeded(): boolean {
    return !this.closed && this.live.size + this.pending <= this.max &&
      (this.waiters.size > 0 || this.live.size + this.pending <= this.min)
  }

  /** To call when the waiters changed: the expirer's timer holds the process only while one waits. */
  waitersChanged(): void {
    const waiting = this.waiters.size > 0
    if (waiting !== this.expirerHolds) {
      this.expirerHolds = waiting
      this.expirer.keepAlive?.(waiting)
    }
  }

  /** Whether the expirer's timer was last told to hold the process. */
  expirerHolds = false

  // Metrics. The hot path (a lease ends, a waiter is served) only stores a duration in a
  // preallocated buffer: an Effect histogram update costs ~40 ns and boxes numbers, far more than
  // a counter. `publish` moves the buffers into the histograms and sets the gauges, off the hot
  // path: every second, on `Pool.stats`, on resize and at close (and a buffer that fills up).
  private readonly useTimes = new DurationBuffer()
  private readonly waitTimes = new DurationBuffer()

  /** Measures a lease that ended: `usageTimeTotal` and `use_time`. */
  private recordLease(heldMillis: number): void {
    this.usageTimeTotal += heldMillis
    this.recordUse(heldMillis)
  }

  private recordUse(heldMillis: number): void {
    if (this.useTimes.add(heldMillis)) this.useTimes.flushTo(this.rt.metrics.useTime)
  }

  /** Records how long a request waited in the queue. */
  recordWait(waitedMillis: number): void {
    if (this.waitTimes.add(waitedMillis)) this.waitTimes.flushTo(this.rt.metrics.waitTime)
  }

  /** Brings every metric up to date. */
  publish(): void {
    this.useTimes.flushTo(this.rt.metrics.useTime)
    this.waitTimes.flushTo(this.rt.metrics.waitTime)
    const m = this.rt.metrics
    m.used.update(this.inUse)
    m.idle.update(this.live.size - this.inUse)
    m.pendingRequests.update(this.waiters.size)
    m.max.update(this.max)
    m.idleMax.update(this.max)
    m.idleMin.update(this.min)
  }
}
