/**
 * LISTEN on a dedicated connection, outside the pool (a pooled connection is reset and may be
 * retired at any time). The connection is opened on the first subscription; when it is lost,
 * a supervisor reconnects with backoff and LISTENs again on every channel that has
 * subscribers. Notifications sent while it was down are lost: PostgreSQL keeps none.
 *
 * @internal
 */
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as PgConnection from "../PgConnection.js"

/** @internal */
export interface Listener {
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

/** @internal */
export const escapeIdentifier = (name: string): string => `"${name.replace(/"/g, "\"\"")}"`

const reconnect = Schedule.exponential("100 millis", 2).pipe(
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(5)))
)

/** @internal */
export const make = (options: PgConnection.PgConnectionOptions): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    const subscribers = new Map<string, Set<(payload: string) => void>>()
    const mutex = yield* Effect.makeSemaphore(1)
    const fibers = yield* FiberSet.make()
    const runFork = yield* FiberSet.runtime(fibers)<never>()
    let current: PgConnection.PgConnection | undefined
    let started = false

    const command = (conn: PgConnection.PgConnection, verb: "LISTEN" | "UNLISTEN", channel: string) =>
      mutex.withPermits(1)(conn.query(`${verb} ${escapeIdentifier(channel)}`, []))

    // One connection at a time: open, LISTEN on every channel, wait until it is lost, repeat.
    const session = Effect.gen(function*() {
      const conn = yield* Effect.retry(
        PgConnection.make({ ...options, applicationName: `${options.applicationName ?? "scoped-pool"}-listen` }),
        reconnect
      )
      const unregister = conn.onNotification((n) => {
        const set = subscribers.get(n.channel)
        if (set !== undefined) { for (const emit of set) emit(n.payload) }
      })
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          unregister()
          current = undefined
        })
      )
      for (const channel of subscribers.keys()) yield* command(conn, "LISTEN", channel)
      current = conn
      // The connection reports its own loss (socket error, terminated backend): check it.
      yield* Effect.repeat(Effect.sleep("250 millis"), { while: () => conn.isAlive })
    }).pipe(Effect.scoped, Effect.ignore)

    const start = () => {
      if (started) return
      started = true
      runFork(Effect.forever(session))
    }

    const listen = (channel: string): Stream.Stream<string, SqlError> =>
      Stream.asyncPush<string, SqlError>((emit) =>
        Effect.gen(function*() {
          const push = (payload: string) => emit.single(payload)
          let set = subscribers.get(channel)
          const first = set === undefined
          if (set === undefined) {
            set = new Set()
            subscribers.set(channel, set)
          }
          set.add(push)
          yield* Effect.addFinalizer(() =>
            Effect.suspend(() => {
              set.delete(push)
              if (set.size > 0) return Effect.void
              subscribers.delete(channel)
              return current === undefined ? Effect.void : Effect.ignore(command(current, "UNLISTEN", channel))
            })
          )
          start()
          if (first && current !== undefined) {
            yield* Effect.mapError(
              command(current, "LISTEN", channel),
              (cause) => new SqlError({ cause, message: `Failed to LISTEN on ${channel}` })
            )
          }
        })
      )

    return { listen }
  })
