/** Assertions on how an effect ended. */
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"

/** The typed failure of `exit`; fails the test if it succeeded or died. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const failure = Cause.failureOption((exit as Exit.Failure<A, E>).cause)
  assert.isTrue(
    Option.isSome(failure),
    `expected a typed failure, got ${Cause.pretty((exit as Exit.Failure<A, E>).cause)}`
  )
  return (failure as Option.Some<E>).value
}
