/**
 * LISTEN on a dedicated connection, outside the pool (a pooled connection is reset and may be
 * retired at any time).
 *
 * The session is `Stopped` until the first subscription, then `Running` on a fiber of the
 * pool's scope: it connects, LISTENs on every channel that has subscribers, and waits for the
 * connection's close event (no polling). When the connection is lost it reconnects — at once
 * after a session that lasted, with backoff (100 ms doubling to 5 s) after one that did not —
 * and LISTENs again. Notifications sent while it was down are lost: PostgreSQL keeps none.
 * A channel whose LISTEN fails (a server error) fails its own subscribers with an `SqlError`
 * and is dropped; the session and the other channels go on. When the last subscriber leaves,
 * the session ends and its connection is closed, so LISTEN used once leaves nothing running.
 *
 * @internal
 */
import { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as PgConnection from "../PgConnection.js"
import type { PgConnectError } from "../PgError.js"

/** @internal */
export interface Listener {
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

/** @internal */
export const escapeIdentifier = (name: string): string => `"${name.replace(/"/g, "\"\"")}"`

interface Subscriber {
  readonly emit: (payload: string) => void
  readonly fail: (error: SqlError) => void
}

type Session =
  | { readonly _tag: "Stopped" }
  | {
    readonly _tag: "Running"
    readonly fiber: Fiber.RuntimeFiber<void>
    /** The connection LISTENing on every channel; `undefined` while (re)connecting. */
    readonly conn: PgConnection.PgConnection | undefined
  }

const stopped: Session = { _tag: "Stopped" }

/** Delays between connection attempts, and between sessions that end soon after they start. */
const firstDelayMillis = 100
const maxDelayMillis = 5_000
/** A session that lasted this long was healthy: the next one starts at once. */
const healthyMillis = 5_000

const connectRetry = Schedule.exponential(Duration.millis(firstDelayMillis), 2).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.millis(maxDelayMillis)))
)

/**
 * `connect` opens one connection (bounded by its `connectTimeout`) in the given scope.
 *
 * @internal
 */
export const make = (
  connect: Effect.Effect<PgConnection.PgConnection, PgConnectError, Scope.Scope>
): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    const channels = new Map<string, Set<Subscriber>>()
    const lock = yield* Effect.makeSemaphore(1)
    const locked = lock.withPermits(1)
    const fibers = yield* FiberSet.make()
    const runFork = yield* FiberSet.runtime(fibers)<never>()
    let session: Session = stopped

    /** The one transition of the session's state. */
    const transition = (next: Session): void => {
      session = next
    }

    const dispatch = (notification: PgConnection.Notification): void => {
      const subscribers = channels.get(notification.channel)
      if (subscribers !== undefined) { for (const subscriber of subscribers) subscriber.emit(notification.payload) }
    }

    // LISTEN on one channel. A server error (or a timeout) fails that channel's subscribers and
    // drops it; a lost connection is left to the session, which LISTENs again once reconnected.
    const listenOn = (conn: PgConnection.PgConnection, channel: string): Effect.Effect<void> =>
      Effect.catchAll(conn.query(`LISTEN ${escapeIdentifier(channel)}`, []), (error) => {
        if (error._tag === "PgConnectionLost") return Effect.void
        const subscribers = channels.get(channel)
        channels.delete(channel)
        const failure = new SqlError({
          cause: error,
          message: `LISTEN on channel ${JSON.stringify(channel)} failed, so its subscription ended: ${error.message}`
        })
        if (subscribers !== undefined) { for (const subscriber of subscribers) subscriber.fail(failure) }
        return Effect.void
      })

    // One connection: open it, LISTEN on every channel, wait for its close event. Returns
    // whether the session goes on (it ends when no channel is left).
    const connection = Effect.gen(function*() {
      // The schedule never ends, so this never fails: it retries while subscribers wait.
      const conn = yield* Effect.retry(
        Effect.tapError(connect, (error) => Effect.logDebug(`LISTEN connection failed, retrying: ${error.message}`)),
        connectRetry
      ).pipe(Effect.orDie)
      const closed = yield* Deferred.make<void>()
      const unregisterNotifications = conn.onNotification(dispatch)
      const unregisterClose = conn.onClose(() => Deferred.unsafeDone(closed, Exit.void))
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          unregisterNotifications()
          unregisterClose()
        })
      )
      const running = yield* locked(Effect.gen(function*() {
        for (const channel of [...channels.keys()]) yield* listenOn(conn, channel)
        if (session._tag !== "Running") return false
        if (channels.size === 0) {
          transition(stopped)
          return false
        }
        transition({ ...session, conn })
        return true
      }))
      if (!running) return false
      yield* Deferred.await(closed)
      yield* locked(Effect.sync(() => {
        if (session._tag === "Running") transition({ ...session, conn: undefined })
      }))
      return true
    }).pipe(Effect.scoped)

    const run: Effect.Effect<void> = Effect.gen(function*() {
      let delay = 0
      for (;;) {
        const started = yield* Clock.currentTimeMillis
        if (!(yield* connection)) return
        const lasted = (yield* Clock.currentTimeMillis) - started
        delay = lasted >= healthyMillis ? 0 : Math.min(Math.max(delay * 2, firstDelayMillis), maxDelayMillis)
        if (delay > 0) yield* Effect.sleep(Duration.millis(delay))
      }
    })

    const subscribe = (channel: string, subscriber: Subscriber) =>
      locked(Effect.gen(function*() {
        let subscribers = channels.get(channel)
        const first = subscribers === undefined
        if (subscribers === undefined) {
          subscribers = new Set()
          channels.set(channel, subscribers)
        }
        subscribers.add(subscriber)
        if (session._tag === "Stopped") {
          transition({ _tag: "Running", fiber: runFork(run), conn: undefined })
        } else if (first && session.conn !== undefined) {
          yield* listenOn(session.conn, channel)
        }
      }))

    const unsubscribe = (channel: string, subscriber: Subscriber) =>
      locked(Effect.gen(function*() {
        const subscribers = channels.get(channel)
        if (subscribers !== undefined && subscribers.delete(subscriber) && subscribers.size === 0) {
          channels.delete(channel)
          if (channels.size > 0 && session._tag === "Running" && session.conn !== undefined) {
            yield* Effect.ignore(session.conn.query(`UNLISTEN ${escapeIdentifier(channel)}`, []))
          }
        }
        // The last subscriber is gone: the session ends, and its connection is closed.
        if (channels.size === 0 && session._tag === "Running") {
          const fiber = session.fiber
          transition(stopped)
          yield* Fiber.interrupt(fiber)
        }
      }))

    const listen = (channel: string): Stream.Stream<string, SqlError> =>
      Stream.asyncPush<string, SqlError>((emit) => {
        const subscriber: Subscriber = {
          emit: (payload) => emit.single(payload),
          fail: (error) => emit.fail(error)
        }
        return Effect.acquireRelease(subscribe(channel, subscriber), () => unsubscribe(channel, subscriber))
      })

    return { listen }
  })
