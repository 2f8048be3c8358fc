/**
 * One resource in the pool and its bookkeeping. Plain mutable fields: the pool mutates them
 * only inside synchronous sections, so no two fibers ever see an entry half-updated.
 *
 * @internal
 */
import type * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"

/** @internal */
export type EntryState = "idle" | "leased" | "retired"

/** @internal */
export class Entry<A> {
  state: EntryState = "idle"
  uses = 0
  lastUsedAt: number
  leasedAt = 0
  /** The holding fiber's id, while leased (formatted only when reported: formatting costs). */
  holder: FiberId.FiberId | undefined = undefined
  /** Where the lease was taken (only with leak detection on). */
  site: string | undefined = undefined
  leakReported = false
  /** Set by `invalidate`: retire on return. */
  invalidated = false
  /** Set when close force-released the entry under its holder. */
  revoked = false

  constructor(
    readonly id: number,
    readonly value: A,
    readonly scope: Scope.CloseableScope,
    readonly createdAt: number,
    readonly expiresAt: number
  ) {
    this.lastUsedAt = createdAt
  }
}
