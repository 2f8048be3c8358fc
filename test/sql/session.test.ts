/**
 * A transaction's connection and its turns (`internal/sql/session.ts`), on a scripted
 * connection: each statement is logged as it starts, and a statement whose text has a gate waits
 * for the test to open it. So the order in which fibers get the connection is exact: FIFO among
 * child fibers, one statement at a time, an interrupted waiter out of the line, nested
 * transactions one at a time with savepoints of their own names, a transaction's end after
 * the statement in flight, and a bounded wait for one's turn.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Pool from "@scoped-pool/core/Pool"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
// The client as our layers build it, over a pool of scripted connections (no server here).
import * as SqlPool from "../../packages/pg/src/internal/sqlClient.js"

interface Gate {
  readonly started: Deferred.Deferred<void>
  readonly open: Deferred.Deferred<void>
}

interface Script {
  /** Every statement's text, as it starts. */
  readonly log: Array<string>
  readonly gates: Map<string, Gate>
  inFlight: number
  maxInFlight: number
}

const scripted = (script: Script): PgConnection.PgConnection => {
  const run = (sql: string) =>
    Effect.suspend(() => {
      script.log.push(sql)
      script.maxInFlight = Math.max(script.maxInFlight, ++script.inFlight)
      const gate = script.gates.get(sql)
      const wait = gate === undefined
        ? Effect.void
        : Effect.zipRight(Deferred.succeed(gate.started, undefined), Deferred.await(gate.open))
      return Effect.ensuring(wait, Effect.sync(() => script.inFlight--))
    })
  return {
    [PgConnection.TypeId]: PgConnection.TypeId,
    id: 1,
    processId: 1,
    transactionStatus: "idle",
    isAlive: true,
    busy: false,
    state: "idle",
    queueDepth: 0,
    headRunningMillis: 0,
    parameter: () => undefined,
    query: (sql) => Effect.as(run(sql), { rows: [], rowCount: 0, command: "SELECT" }),
    queryRaw: (sql) => Effect.as(run(sql), [{ rows: [{ sql }], rowCount: 1, command: "SELECT", fields: [] }]),
    cursor: (sql) => Stream.unwrap(Effect.as(run(sql), Stream.make({ sql }))),
    cancel: Effect.succeed("confirmed"),
    rollbackIfDirty: Effect.succeed(true),
    resetNeeded: () => false,
    reset: () => Effect.succeed(true),
    onNotification: () => () => {},
    onClose: () => () => {}
  }
}

/** A client over one scripted connection, the script, and a gate maker. */
const setupWith = (options: { readonly turnTimeout: number }) =>
  Effect.gen(function*() {
    const script: Script = { log: [], gates: new Map(), inFlight: 0, maxInFlight: 0 }
    const pool = yield* Pool.make({ name: "session-test", acquire: Effect.succeed(scripted(script)), min: 1, max: 1 })
    const sql = yield* SqlPool.make({
      pool,
      prepare: false,
      pipeline: false,
      streamChunkSize: 16,
      turnTimeout: options.turnTimeout,
      compiler: PgClient.makeCompiler(),
      spanAttributes: [],
      transformRows: undefined
    }).pipe(Effect.provide(Reactivity.layer))
    const gate = (text: string) =>
      Effect.map(Effect.all([Deferred.make<void>(), Deferred.make<void>()]), ([started, open]) => {
        const gate = { started, open }
        script.gates.set(text, gate)
        return gate
      })
    return { sql, script, gate }
  })

const setup = setupWith({ turnTimeout: 30_000 })

const statement = (sql: SqlClient.SqlClient, text: string) => sql.unsafe(text)

describe("Session: a transaction's connection", () => {
  it.scoped("child fibers take the connection one statement at a time, in the order they asked", () =>
    Effect.gen(function*() {
      const { gate, script, sql } = yield* setup
      const hold = yield* gate("HOLD")
      yield* sql.withTransaction(Effect.gen(function*() {
        const holder = yield* Effect.fork(statement(sql, "HOLD"))
        yield* Deferred.await(hold.started)
        // Each child says it is about to ask, then asks at once: they queue in this order.
        const asked = yield* Effect.all(Array.from({ length: 5 }, () => Deferred.make<void>()))
        const children = yield* Effect.fork(Effect.forEach(
          asked,
          (ready, i) => Effect.zipRight(Deferred.succeed(ready, undefined), statement(sql, `child ${i + 1}`)),
          { concurrency: "unbounded" }
        ))
        yield* Effect.forEach(asked, Deferred.await)
        yield* Deferred.succeed(hold.open, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(children)
      }))
      assert.deepStrictEqual(script.log, [
        "BEGIN",
        "HOLD",
        "child 1",
        "child 2",
        "child 3",
        "child 4",
        "child 5",
        "COMMIT"
      ])
      assert.strictEqual(script.maxInFlight, 1)
    }))

  it.scoped("a waiting statement that is interrupted leaves the line; the others keep their turn", () =>
    Effect.gen(function*() {
      const { gate, script, sql } = yield* setup
      const hold = yield* gate("HOLD")
      yield* sql.withTransaction(Effect.gen(function*() {
        const holder = yield* Effect.fork(statement(sql, "HOLD"))
        yield* Deferred.await(hold.started)
        const asked = yield* Effect.all(Array.from({ length: 3 }, () => Deferred.make<void>()))
        const [first, second, third] = yield* Effect.forEach(
          asked,
          (ready, i) =>
            Effect.fork(Effect.zipRight(Deferred.succeed(ready, undefined), statement(sql, `waiter ${i + 1}`)))
        )
        yield* Effect.forEach(asked, Deferred.await)
        yield* Fiber.interrupt(second!)
        yield* Deferred.succeed(hold.open, undefined)
        yield* Effect.forEach([holder, first!, third!], Fiber.join)
      }))
      assert.deepStrictEqual(script.log, ["BEGIN", "HOLD", "waiter 1", "waiter 3", "COMMIT"])
    }))

  it.scoped("nested transactions of sibling fibers run one at a time, each with a savepoint of its own name", () =>
    Effect.gen(function*() {
      const { gate, script, sql } = yield* setup
      const hold = yield* gate("inside A")
      yield* sql.withTransaction(Effect.gen(function*() {
        const a = yield* Effect.fork(sql.withTransaction(
          Effect.zipRight(statement(sql, "inside A"), Effect.fail("A fails"))
        ))
        yield* Deferred.await(hold.started)
        // While A is open, its siblings wait: B's nested transaction and a plain statement of the parent.
        const asked = yield* Effect.all([Deferred.make<void>(), Deferred.make<void>()])
        const b = yield* Effect.fork(
          Effect.zipRight(Deferred.succeed(asked[0], undefined), sql.withTransaction(statement(sql, "inside B")))
        )
        const parent = yield* Effect.fork(
          Effect.zipRight(Deferred.succeed(asked[1], undefined), statement(sql, "parent level"))
        )
        yield* Effect.forEach(asked, Deferred.await)
        yield* Deferred.succeed(hold.open, undefined)
        assert.strictEqual(yield* Effect.flip(Fiber.join(a)), "A fails")
        yield* Fiber.join(b)
        yield* Fiber.join(parent)
      }))
      assert.deepStrictEqual(script.log, [
        "BEGIN",
        "SAVEPOINT scoped_pool_1",
        "inside A",
        "ROLLBACK TO SAVEPOINT scoped_pool_1",
        "SAVEPOINT scoped_pool_2",
        "inside B",
        "parent level",
        "COMMIT"
      ])
      assert.strictEqual(script.maxInFlight, 1)
    }))

  it.scoped("COMMIT waits for the statement in flight of a fiber the body did not join; that fiber's next one fails", () =>
    Effect.gen(function*() {
      const { gate, script, sql } = yield* setup
      const hold = yield* gate("LEFT RUNNING")
      const bodyDone = yield* Deferred.make<void>()
      const leaked = yield* sql.withTransaction(Effect.gen(function*() {
        const fiber = yield* Effect.forkDaemon(
          Effect.zipRight(statement(sql, "LEFT RUNNING"), statement(sql, "after the end"))
        )
        yield* Deferred.await(hold.started)
        // The last step of the body: from here on the transaction is ending (waiting for the statement).
        yield* Deferred.succeed(bodyDone, undefined)
        return fiber
      })).pipe(Effect.fork)
      yield* Deferred.await(bodyDone)
      yield* Deferred.succeed(hold.open, undefined)
      const fiber = yield* Fiber.join(leaked)
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.include(error.message, "has ended")
      // COMMIT came after the statement in flight, never beside it.
      assert.deepStrictEqual(script.log, ["BEGIN", "LEFT RUNNING", "COMMIT"])
      assert.strictEqual(script.maxInFlight, 1)
    }))

  it.scoped("a stream holds the connection: a statement meanwhile fails at once, and runs once the stream ended", () =>
    Effect.gen(function*() {
      const { script, sql } = yield* setup
      const result = yield* sql.withTransaction(Effect.gen(function*() {
        const during = yield* sql.unsafe("SELECT 'stream'").stream.pipe(
          Stream.mapEffect(() => Effect.flip(statement(sql, "during the stream"))),
          Stream.runCollect
        )
        yield* statement(sql, "after the stream")
        return [...during].map((error) => error.message.startsWith("a stream is open on this transaction's connection"))
      }))
      assert.deepStrictEqual(result, [true])
      assert.deepStrictEqual(script.log, ["BEGIN", "SELECT 'stream'", "after the stream", "COMMIT"])
    }))

  // Wall clock: the bound is the subject.
  it.live("a sibling's statement that a nested transaction waits for fails after the turn timeout, never hangs", () =>
    Effect.scoped(Effect.gen(function*() {
      const { script, sql } = yield* setupWith({ turnTimeout: 100 })
      const signal = yield* Deferred.make<void>()
      const [nested, sibling] = yield* sql.withTransaction(Effect.all([
        // The nested transaction waits for its sibling's statement, which waits for it to end.
        Effect.either(sql.withTransaction(Deferred.await(signal))),
        Effect.either(Effect.ensuring(statement(sql, "sibling"), Deferred.succeed(signal, undefined)))
      ], { concurrency: "unbounded" }))
      assert.isTrue(nested._tag === "Right")
      assert.isTrue(sibling._tag === "Left" && sibling.left.message.startsWith("waited 100 ms for this transaction's"))
      assert.deepStrictEqual(script.log, ["BEGIN", "SAVEPOINT scoped_pool_1", "COMMIT"])
    })))
})
