/**
 * Sleeps of the pool's own background work (maintenance), which must not keep an otherwise
 * finished Node process alive: on the live clock they use an unref'd timer. Under any other
 * Clock (a TestClock) they go through that Clock, so tests move them with `TestClock.adjust`.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

const liveClock: Clock.Clock = Effect.runSync(Effect.clock)

const unrefSleep = (millis: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    timer.unref?.()
    return Effect.sync(() => clearTimeout(timer))
  })

/** @internal */
export const backgroundSleep = (clock: Clock.Clock, millis: number): Effect.Effect<void> =>
  clock === liveClock ? unrefSleep(millis) : clock.sleep(Duration.millis(millis))
