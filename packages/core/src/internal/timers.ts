/**
 * The pool's own timers. Background work (maintenance, retry backoff) must not keep an
 * otherwise finished Node process alive: on the live clock it sleeps on an unref'd timer. The
 * waiters' deadlines must: while a caller waits, its `PoolTimeout` has to come. Under any other
 * Clock (a TestClock) every sleep goes through that Clock, so tests move them with
 * `TestClock.adjust`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

const liveClock: Clock.Clock = Context.get(DefaultServices.liveServices, Clock.Clock)

const unrefSleep = (millis: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    timer.unref?.()
    return Effect.sync(() => clearTimeout(timer))
  })

/** A sleep that never keeps the process alive. @internal */
export const backgroundSleep = (clock: Clock.Clock, millis: number): Effect.Effect<void> =>
  clock === liveClock ? unrefSleep(millis) : clock.sleep(Duration.millis(millis))

/**
 * Sleeps `millis` (until woken when `undefined`), keeping the process alive, or until the
 * `wake` handed to `onWake` is called; `onWake(undefined)` is called once the sleep is over.
 *
 * @internal
 */
export const wakeableSleep = (
  clock: Clock.Clock,
  millis: number | undefined,
  onWake: (wake: (() => void) | undefined) => void
): Effect.Effect<void> => {
  if (millis !== undefined && clock === liveClock) {
    // One timer and no fiber per sleep: the expirer sleeps like this once per deadline.
    return Effect.async<void>((resume) => {
      const done = () => {
        clearTimeout(timer)
        onWake(undefined)
        resume(Effect.void)
      }
      const timer = setTimeout(done, millis)
      onWake(done)
      return Effect.sync(() => {
        clearTimeout(timer)
        onWake(undefined)
      })
    })
  }
  const woken = Effect.async<void>((resume) => {
    onWake(() => {
      onWake(undefined)
      resume(Effect.void)
    })
    return Effect.sync(() => onWake(undefined))
  })
  return millis === undefined ? woken : Effect.raceFirst(woken, clock.sleep(Duration.millis(millis)))
}
