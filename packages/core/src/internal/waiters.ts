/**
 * The FIFO queue of callers waiting for a lease.
 *
 * A hand-off is final: once `settle` returns true the waiter owns the entry, and if it gave up
 * in the same instant (interrupt, timeout) it must give the entry back itself — the pool never
 * loses a resource to a waiter that left (psycopg issue 509). A waiter that left is removed
 * from the queue lazily.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { Entry } from "./entry.js"

/** @internal */
export class Waiter<A, E> {
  /** The entry handed over, once settled with one. */
  entry: Entry<A> | undefined = undefined
  /** What the waiter's wait ends with, once settled; kept for a waiter not suspended yet. */
  result: Effect.Effect<Entry<A>, E> | undefined = undefined
  settled = false
  resume: ((effect: Effect.Effect<Entry<A>, E>) => void) | undefined = undefined
  constructor(readonly since: number, readonly fiber: Fiber.RuntimeFiber<any, any> | undefined) {}
}

/** @internal */
export class WaiterQueue<A, E> {
  private items: Array<Waiter<A, E> | undefined> = []
  private head = 0
  /** Waiters not settled yet. */
  size = 0

  push(waiter: Waiter<A, E>): void {
    this.items.push(waiter)
    this.size++
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
    return out
  }
}
