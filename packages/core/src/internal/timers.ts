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
 * The handle on a {@link wakeableSleep} in progress: `wake` ends it early, `keepAlive` says
 * whether its timer holds the process (a live timer is ref'd or unref'd; others ignore it).
 *
 * @internal
 */
export interface SleepControl {
  wake: (() => void) | undefined
  keepAlive: ((on: boolean) => void) | undefined
}

/**
 * Sleeps `millis` (until woken when `undefined`), or until `control.wake` is called. Its timer
 * keeps the process alive while `keepAlive` (then `control.keepAlive`) says so.
 *
 * @internal
 */
export const wakeableSleep = (
  clock: Clock.Clock,
  millis: number | undefined,
  control: SleepControl,
  keepAlive: boolean
): Effect.Effect<void> => {
  const clear = () => {
    control.wake = undefined
    control.keepAlive = undefined
  }
  if (millis !== undefined && clock === liveClock) {
    // One timer and no fiber per sleep: the expirer sleeps like this once per deadline.
    return Effect.async<void>((resume) => {
      const done = () => {
        clearTimeout(timer)
        clear()
        resume(Effect.void)
      }
      const timer = setTimeout(done, millis)
      if (!keepAlive) timer.unref?.()
      control.wake = done
      control.keepAlive = (on) => on ? timer.ref?.() : timer.unref?.()
      return Effect.sync(() => {
        clearTimeout(timer)
        clear()
      })
    })
  }
  const woken = Effect.async<void>((resume) => {
    control.wake = () => {
      clear()
      resume(Effect.void)
    }
    return Effect.sync(clear)
  })
  return millis === undefined ? woken : Effect.raceFirst(woken, clock.sleep(Duration.millis(millis)))
}
