/**
 * The wire connection's state machine as a table (issue 11 item 20): for each state, each event
 * — submit, cancel, close, the socket lost — and what must follow: the next state, and every
 * statement settled (none left waiting). Against the real server; a statement held at the head
 * is `pg_sleep`, a cancel episode is held open by the server's own pace.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Connect from "../../packages/pg/src/internal/connect.js"
import type { ConnectionState, Result, WireConnection } from "../../packages/pg/src/internal/wire/connection.js"
import type { Outcome } from "../../packages/pg/src/internal/wire/errors.js"
import { ConnectionLost, NotSent } from "../../packages/pg/src/internal/wire/errors.js"
import { optionsFromUrl } from "../pg/options.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const connect = () =>
  Effect.acquireRelease(
    Connect.connect(Effect.runSync(Connect.resolve(optionsFromUrl(url, applicationName))), {}),
    (wire) => Effect.async<void>((resume) => wire.close(() => resume(Effect.void)))
  )

interface Outcomes {
  readonly settled: Array<{ readonly sql: string; readonly error: Outcome | undefined; readonly rows: number }>
  readonly waiters: Array<() => void>
}

const outcomesOf = (): Outcomes => ({ settled: [], waiters: [] })

const submit = (wire: WireConnection, sql: string, outcomes: Outcomes) =>
  wire.submit(sql, undefined, false, false, undefined, (error, results: Array<Result>) => {
    outcomes.settled.push({ sql, error, rows: results[0]?.rows.length ?? 0 })
    for (const wake of outcomes.waiters.splice(0)) wake()
  })

/** Resumes once `n` statements have settled (woken by their callbacks, no polling). */
const settled = (outcomes: Outcomes, n: number) =>
  Effect.promise(() =>
    new Promise<void>((resolve) => {
      const check = () => outcomes.settled.length >= n ? resolve() : outcomes.waiters.push(check)
      check()
    })
  )

/** Past the current macrotask: the writes gathered in microtasks have been flushed. */
const flushed = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Resumes when the connection has closed (its close callback). */
const closing = (wire: WireConnection) => {
  let done = false
  const waiters: Array<() => void> = []
  wire.close(() => {
    done = true
    for (const wake of waiters) wake()
  })
  return {
    get done() {
      return done
    },
    wait: Effect.promise(() => new Promise<void>((resolve) => done ? resolve() : waiters.push(resolve)))
  }
}

const stateIs = (wire: WireConnection, state: ConnectionState) => assert.strictEqual(wire.state, state)

describe("wire connection states × events", () => {
  it.scopedLive("idle × submit → busy → idle, answered", () =>
    Effect.gen(function*() {
      const wire = yield* connect()
      const outcomes = outcomesOf()
      stateIs(wire, "idle")
      submit(wire, "SELECT 1", outcomes)
      stateIs(wire, "busy")
      yield* settled(outcomes, 1)
      stateIs(wire, "idle")
      assert.isUndefined(outcomes.settled[0]!.error)
    }))

  it.scopedLive("busy × cancel of a queued statement → dropped, never sent; of the head → cancelling, then idle", () =>
    Effect.gen(function*() {
      const wire = yield* connect()
      const outcomes = outcomesOf()
      const queued = submit(wire, "SELECT pg_sleep(10)", outcomes)
      wire.cancel(queued, "interrupt") // same tick: not written yet
      assert.instanceOf(outcomes.settled[0]!.error, NotSent)
      stateIs(wire, "idle")
      const head = submit(wire, "SELECT pg_sleep(10)", outcomes)
      yield* flushed
      assert.strictEqual(head.state, "written")
      wire.cancel(head, "interrupt")
      stateIs(wire, "cancelling")
      // cancelling × submit → accepted, written once the cancel has ended
      const after = submit(wire, "SELECT 2", outcomes)
      assert.strictEqual(after.state, "queued")
      yield* settled(outcomes, 3)
      assert.strictEqual((outcomes.settled[1]!.error as { code?: string }).code, "57014")
      assert.isUndefined(outcomes.settled[2]!.error)
      stateIs(wire, "idle")
    }))

  it.scopedLive("busy × close → closing: every statement fails at once; then dead after the cancel and Terminate", () =>
    Effect.gen(function*() {
      const wire = yield* connect()
      const outcomes = outcomesOf()
      const head = submit(wire, "SELECT pg_sleep(10)", outcomes)
      submit(wire, "SELECT 2", outcomes)
      yield* flushed
      assert.strictEqual(head.state, "written")
      submit(wire, "SELECT 3", outcomes) // queued behind
      const close = closing(wire)
      stateIs(wire, "closing")
      assert.strictEqual(outcomes.settled.length, 3)
      for (const o of outcomes.settled) assert.instanceOf(o.error, ConnectionLost)
      // closing × submit → fails at once
      submit(wire, "SELECT 4", outcomes)
      assert.instanceOf(outcomes.settled[3]!.error, ConnectionLost)
      yield* close.wait
      stateIs(wire, "dead")
    }))

  it.scopedLive("busy × socket lost → dead: every statement fails; dead × submit fails at once, × close calls back at once", () =>
    Effect.gen(function*() {
      const wire = yield* connect()
      const outcomes = outcomesOf()
      // no cancel on a lost socket: the backend ends when its statement does
      const head = submit(wire, "SELECT pg_sleep(0.5)", outcomes)
      yield* flushed
      assert.strictEqual(head.state, "written")
      submit(wire, "SELECT 2", outcomes)
      wire.destroy()
      stateIs(wire, "dead")
      assert.strictEqual(outcomes.settled.length, 2)
      for (const o of outcomes.settled) assert.instanceOf(o.error, ConnectionLost)
      submit(wire, "SELECT 3", outcomes)
      assert.instanceOf(outcomes.settled[2]!.error, ConnectionLost)
      assert.isTrue(closing(wire).done)
      assert.isFalse(wire.usable)
    }))

  it.scopedLive("cancelling × close → closing → dead: the held statement fails at once, the cancel still ends", () =>
    Effect.gen(function*() {
      const wire = yield* connect()
      const outcomes = outcomesOf()
      const head = submit(wire, "SELECT pg_sleep(10)", outcomes)
      yield* flushed
      assert.strictEqual(head.state, "written")
      wire.cancel(head, "interrupt")
      stateIs(wire, "cancelling")
      const close = closing(wire)
      stateIs(wire, "closing")
      assert.instanceOf(outcomes.settled[0]!.error, ConnectionLost)
      yield* close.wait
      stateIs(wire, "dead")
    }))

  it.scopedLive("connecting × close → dead, the connect attempt fails", () =>
    Effect.gen(function*() {
      const resolved = Effect.runSync(Connect.resolve(optionsFromUrl(url, applicationName)))
      const { WireConnection } = yield* Effect.promise(() =>
        import("../../packages/pg/src/internal/wire/connection.js")
      )
      const wire = new WireConnection(resolved.wire)
      const failures: Array<Error | undefined> = []
      wire.connect((error) => failures.push(error))
      stateIs(wire, "connecting")
      assert.isTrue(closing(wire).done)
      stateIs(wire, "dead")
      yield* flushed
      assert.strictEqual(failures.length, 1)
      assert.isDefined(failures[0])
    }))
})

describe("close right after a write", () => {
  it.scopedLive(
    "the cancel may reach the backend before it started the statement: it is signalled again",
    () =>
      Effect.gen(function*() {
        // Many rounds: close in the same instant as the statement went out, so that some cancels
        // arrive while the backend is still reading it (the server ignores those).
        for (let i = 0; i < 30; i++) {
          const wire = yield* Connect.connect(Effect.runSync(Connect.resolve(optionsFromUrl(url, applicationName))), {})
          const outcomes = outcomesOf()
          submit(wire, "SELECT pg_sleep(10)", outcomes)
          yield* flushed
          const startedAt = performance.now()
          yield* closing(wire).wait
          const took = performance.now() - startedAt
          // within cancelTimeout (1 s): the statement was cancelled, not the connection destroyed
          assert.isBelow(took, 900, `round ${i}: close took ${took.toFixed(0)} ms`)
        }
      }),
    { timeout: 60_000 }
  )
})
