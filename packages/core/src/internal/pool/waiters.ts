/**
 * The FIFO queue of callers waiting for a lease, and their deadlines.
 *
 * A hand-off is final: once `take` returns a waiter it owns whatever it is given, and if it gave
 * up in the same instant (interrupt, timeout) it must give the entry back itself — the pool
 * never loses a resource to a waiter that left (psycopg issue 509). A waiter that left is
 * removed from the queue lazily.
 *
 * Every waiter's deadline is its request's start plus `acquireTimeout`, so deadlines mostly
 * follow queue order and the head's deadline is the next to expire. A caller that spent part
 * of its time on checkout checks before it queued has an earlier deadline than waiters queued
 * before it: such a waiter is also kept in a short side list, so that no deadline is missed.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { Entry, Sharer } from "./entry.js"

/** @internal */
export class Waiter<A, E> {
  /** The entry handed over, once settled with one. */
  entry: Entry<A> | undefined = undefined
  /** A `useShared` caller: the lease it was given on `entry`, once settled with one. */
  sharer: Sharer<A> | undefined = undefined
  /** What the waiter's wait ends with, once settled; kept for a waiter not suspended yet. */
  result: Effect.Effect<Entry<A>, E> | undefined = undefined
  settled = false
  resume: ((effect: Effect.Effect<Entry<A>, E>) => void) | undefined = undefined
  constructor(
    /** When the request started (before any checkout check). */
    readonly since: number,
    readonly deadline: number,
    readonly fiber: Fiber.RuntimeFiber<any, any>,
    /** A `useShared` caller: it may be given a lease on a shared entry. */
    readonly shared = false
  ) {}
}

/** @internal */
export class WaiterQueue<A, E> {
  private items: Array<Waiter<A, E> | undefined> = []
  private head = 0
  private lastDeadline = Number.NEGATIVE_INFINITY
  /** Waiters whose deadline comes before that of a waiter queued earlier. */
  private early: Array<Waiter<A, E>> = []
  /** Waiters not settled yet. */
  size = 0

  push(waiter: Waiter<A, E>): void {
    this.items.push(waiter)
    this.size++
    if (waiter.deadline < this.lastDeadline) this.early.push(waiter)
    else this.lastDeadline = waiter.deadline
  }

  /** Marks a waiter as gone; returns false when it was already settled (it may hold an entry). */
  leave(waiter: Waiter<A, E>): boolean {
    if (waiter.settled) return false
    waiter.settled = true
    this.size--
    return true
  }

  /** The oldest waiter still waiting, settled (removed) by this call. */
  take(): Waiter<A, E> | undefined {
    while (this.head < this.items.length) {
      const waiter = this.items[this.head]!
      this.items[this.head++] = undefined
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head)
        this.head = 0
      }
      if (!waiter.settled) {
        waiter.settled = true
        this.size--
        return waiter
      }
    }
    return undefined
  }

  /** The oldest waiter still waiting, left in the queue. */
  peek(): Waiter<A, E> | undefined {
    while (this.head < this.items.length) {
      const waiter = this.items[this.head]!
      if (!waiter.settled) return waiter
      this.items[this.head++] = undefined
    }
    return undefined
  }

  /** Settles and returns every waiter still waiting, oldest first. */
  takeAll(): Array<Waiter<A, E>> {
    const out: Array<Waiter<A, E>> = []
    for (let w = this.take(); w !== undefined; w = this.take()) out.push(w)
    this.early = []
    return out
  }

  /** The earliest deadline of a waiter still waiting, or `undefined` when none waits. */
  nextDeadline(): number | undefined {
    let next = this.peek()?.deadline
    if (this.early.length > 0) {
      this.early = this.early.filter((w) => !w.settled)
      for (const waiter of this.early) if (next === undefined || waiter.deadline < next) next = waiter.deadline
    }
    return next
  }

  /** Settles and returns every waiter whose deadline is at or before `now`. */
  takeExpired(now: number): Array<Waiter<A, E>> {
    const out: Array<Waiter<A, E>> = []
    for (let head = this.peek(); head !== undefined && head.deadline <= now; head = this.peek()) {
      this.leave(head)
      out.push(head)
    }
    for (const waiter of this.early) {
      if (waiter.deadline <= now && this.leave(waiter)) out.push(waiter)
    }
    return out
  }
}
