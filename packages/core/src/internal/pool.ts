/**
 * The implementation behind the `Pool` facade: the value a user holds (`PoolImpl`, a thin
 * handle on the pool's state) and each operation of the public API. The pool itself lives in
 * `./pool/`, one module per concern.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import type { Pool } from "../Pool.js"
import type * as PoolError from "../PoolError.js"
import * as PoolOptions from "../PoolOptions.js"
import type * as PoolStats from "../PoolStats.js"
import * as Checkout from "./pool/checkout.js"
import * as Close from "./pool/close.js"
import * as Growth from "./pool/growth.js"
import * as Make from "./pool/make.js"
import * as Report from "./pool/report.js"
import * as Retirement from "./pool/retirement.js"
import type { PoolState } from "./pool/state.js"

/** @internal */
export const TypeId: "~@scoped-pool/core/Pool" = "~@scoped-pool/core/Pool" as const

/** @internal */
export class PoolImpl<A, E> implements Pipeable {
  readonly [TypeId] = TypeId
  readonly get: Effect.Effect<A, E | PoolError.PoolError, Scope.Scope>
  constructor(readonly state: PoolState<A, E>) {
    this.get = Checkout.get(state)
  }
  get name(): string {
    return this.state.name
  }
  use<B, E2, R2>(f: (a: A) => Effect.Effect<B, E2, R2>): Effect.Effect<B, E | E2 | PoolError.PoolError, R2> {
    return Checkout.use(this.state, f)
  }
  useShared<B, E2, R2>(f: (a: A) => Effect.Effect<B, E2, R2>): Effect.Effect<B, E | E2 | PoolError.PoolError, R2> {
    return Checkout.useShared(this.state, f)
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
}

/** Every `Pool` is a `PoolImpl`. */
const stateOf = <A, E>(self: Pool<A, E>): PoolState<A, E> => (self as unknown as PoolImpl<A, E>).state

/** @internal */
export const make = <A, E, R>(
  options: PoolOptions.Options<A, E, R>
): Effect.Effect<PoolImpl<A, E>, PoolError.PoolConfigError, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.map(Make.make(options), (state) => new PoolImpl(state))

/** @internal */
export const get = <A, E>(self: Pool<A, E>): Effect.Effect<A, E | PoolError.PoolError, Scope.Scope> => self.get

/** @internal */
export const use = dual(
  2,
  <A, E, B, E2, R2>(self: PoolImpl<A, E>, f: (a: A) => Effect.Effect<B, E2, R2>) => self.use(f)
)

/** @internal */
export const useShared = dual(
  2,
  <A, E, B, E2, R2>(self: PoolImpl<A, E>, f: (a: A) => Effect.Effect<B, E2, R2>) => self.useShared(f)
)

/** @internal */
export const invalidate = dual(
  2,
  <A, E>(self: Pool<A, E>, resource: A): Effect.Effect<void> =>
    Effect.sync(() => Retirement.invalidate(stateOf(self), resource))
)

/** @internal */
export const stats = <A, E>(self: Pool<A, E>): Effect.Effect<PoolStats.Stats> =>
  Effect.sync(() => {
    const state = stateOf(self)
    state.publish()
    return Report.stats(state)
  })

/** @internal */
export const waitReady = dual(
  2,
  <A, E>(self: Pool<A, E>, timeout: Duration.DurationInput) => Growth.waitReady(stateOf(self), timeout)
)

/** @internal */
export const resize = dual(
  2,
  <A, E>(
    self: Pool<A, E>,
    sizes: { readonly min: number; readonly max: number }
  ): Effect.Effect<void, PoolError.PoolConfigError> =>
    Effect.flatMap(
      PoolOptions.resolve({ acquire: Effect.void, name: self.name, min: sizes.min, max: sizes.max }),
      (checked) => Effect.sync(() => Retirement.resize(stateOf(self), checked.min, checked.max))
    )
)

/** @internal */
export const drain = <A, E>(self: Pool<A, E>): Effect.Effect<void> => Effect.sync(() => Retirement.drain(stateOf(self)))

/** @internal */
export const close = <A, E>(self: Pool<A, E>): Effect.Effect<void> => Close.close(stateOf(self))

/** @internal */
export const isPool = (u: unknown): u is PoolImpl<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u
