/**
 * One resource in the pool: its explicit state and the moves allowed between states.
 *
 * ```
 *            lease                invalidate
 *   idle ──────────────▶ leased ─────────────▶ invalidated
 *    ▲  ◀──────────────   │  │                   │      │
 *    │      return        │  │ revoke (close)    │      │ revoke
 *    │                    │  ▼                   │      ▼
 *    │                    │  revoked ◀───────────┼──────┘
 *    │ retire             │ retire               │ retire (on return)
 *    ▼                    ▼                      ▼
 *   retired ◀─────────────┴──────────────────────┘
 * ```
 *
 * `leased` and `invalidated` are the two lease states: the resource belongs to a holder, and
 * `invalidated` says it is retired when returned. `revoked` is a lease that close ended under
 * its holder (its resource is released; the holder's return fails with `LeaseRevoked`).
 * `revoked` and `retired` are final. A lease taken with `useShared` may be joined by more
 * leases while the entry stays `leased` (see `Sharer`): it ends, and the entry moves on, when
 * the last of them ends. The pool moves an entry only through
 * `PoolState.transition`, which keeps the pool's counts and wakes whatever waits on the move;
 * the fields below the state are data of the current lease, reset by each lease.
 *
 * @internal
 */
import type * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"

/** @internal */
export type EntryState = "idle" | "leased" | "invalidated" | "revoked" | "retired"

/** Whether an entry may move from `from` to `to`: the arrows of the diagram above. @internal */
export const canMove = (from: EntryState, to: EntryState): boolean => {
  switch (from) {
    case "idle":
      return to === "leased" || to === "retired"
    case "leased":
      return to !== "leased"
    case "invalidated":
      return to === "revoked" || to === "retired"
    default:
      return false
  }
}

/** Whether an entry in `state` belongs to a holder. @internal */
export const isLeased = (state: EntryState): boolean => state === "leased" || state === "invalidated"

/**
 * One of the leases that share a resource (`Pool.useShared`): who holds it, since when, and
 * where it was taken. An exclusive lease has none: the entry's own fields describe it.
 *
 * @internal
 */
export class Sharer<A> {
  /** Whether this lease was reported as a leak already. */
  leakReported = false
  constructor(
    readonly entry: Entry<A>,
    /** The holding fiber's id. */
    readonly holder: FiberId.FiberId,
    readonly since: number,
    /** Where the lease was taken (only with leak detection on). */
    readonly site: string | undefined
  ) {}
}

/** @internal */
export class Entry<A> {
  state: EntryState = "idle"
  /**
   * While the entry is leased through `useShared`: its leases, the first included (the entry's
   * `leasedAt`/`holder` fields are the first one's). `undefined` for an exclusive lease, and
   * from the moment the last sharer left (while its reset runs): no lease joins then.
   */
  sharers: Array<Sharer<A>> | undefined = undefined
  uses = 0
  lastUsedAt: number
  // The current lease's data.
  leasedAt = 0
  /** The holding fiber's id, while leased (formatted only when reported: formatting costs). */
  holder: FiberId.FiberId | undefined = undefined
  /** Where the lease was taken (only with leak detection on). */
  site: string | undefined = undefined
  /** Whether this lease was reported as a leak already. */
  leakReported = false

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
