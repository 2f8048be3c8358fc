/**
 * S8: a connection is never shared by fibers behind their back. Outside a transaction every
 * statement has its own lease, so 200 fibers racing over 10 connections each get their own
 * answers; inside a transaction the statements of concurrent child fibers are serialised on
 * its one connection; and a stream owns the transaction's connection while it is open — a
 * second stream or a statement meanwhile fails at once with an `SqlError` saying so (documented
 * in `internal/sqlClient.ts`, `TransactionConnection.stream`), and the transaction rolls back.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Array from "effect/Array"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const max = 10
const table = "s8_no_shared_connections"

const Tables = Layer.scopedDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const drop = sql`DROP TABLE IF EXISTS ${sql(table)}`
    yield* drop
    yield* sql`CREATE TABLE ${sql(table)} (id serial PRIMARY KEY, note text NOT NULL)`
    yield* Effect.addFinalizer(() => Effect.orDie(drop))
  }).pipe(Effect.orDie)
)

const Live = Layer.provideMerge(Tables, PgPool.layer({ url: Redacted.make(url), applicationName, max }))

const isStreamOpenError = (error: unknown): boolean =>
  error instanceof SqlError && error.message.includes("a stream is open on this transaction's connection")

describe("S8 no shared connections", () => {
  layer(Live, { timeout: "60 seconds" })((it) => {
    it.effect("200 fibers × 50 parameterised queries each get their own answers over 10 connections", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const fibers = 200
        const perFiber = 50
        const results = yield* Effect.forEach(
          Array.range(1, fibers),
          (fiber) =>
            Effect.forEach(Array.range(1, perFiber), (i) =>
              Effect.map(
                sql<{ f: number; i: number; pid: number }>`SELECT ${fiber}::int AS f, ${i}::int AS i,
                  pg_backend_pid() AS pid`,
                (rows) => ({ fiber, i, rows })
              )),
          { concurrency: "unbounded" }
        ).pipe(Effect.map(Array.flatten))

        assert.strictEqual(results.length, fibers * perFiber)
        const wrong = results.filter(({ fiber, i, rows }) =>
          rows.length !== 1 || rows[0]!.f !== fiber || rows[0]!.i !== i
        )
        assert.deepStrictEqual(wrong, [], "a fiber saw another statement's result")
        // Every (fiber, i) answered exactly once.
        const answers = new Set(results.map(({ rows }) => `${rows[0]!.f}:${rows[0]!.i}`))
        assert.strictEqual(answers.size, fibers * perFiber)
        const pids = new Set(results.map(({ rows }) => rows[0]!.pid))
        assert.isAtMost(pids.size, max)
        assert.isAtLeast(pids.size, 2, "200 concurrent fibers ran on a single connection")

        const stats = yield* Effect.flatMap(PgPool.PgPool, (pool) => pool.stats)
        assert.strictEqual(stats.inUse, 0)
        assert.isAtMost(stats.size, max)
      }))

    it.effect("10 child fibers in one transaction run on its connection and transaction, one at a time", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const children = 10
        const rows = yield* sql.withTransaction(
          Effect.gen(function*() {
            // clock_timestamp() is read before and after the sleep, in select-list order.
            const rows = yield* Effect.forEach(
              Array.range(1, children),
              (child) =>
                Effect.map(
                  sql<{ child: number; pid: number; txid: string; started: string; ended: string }>`SELECT
                    ${child}::int AS child, pg_backend_pid() AS pid, txid_current()::text AS txid,
                    (extract(epoch FROM clock_timestamp()) * 1000000)::int8::text AS started,
                    pg_sleep(0.02)::text AS slept,
                    (extract(epoch FROM clock_timestamp()) * 1000000)::int8::text AS ended`,
                  (rows) => rows[0]!
                ),
              { concurrency: "unbounded" }
            )
            return rows
          })
        )

        assert.deepStrictEqual(rows.map((r) => r.child), Array.range(1, children))
        assert.strictEqual(new Set(rows.map((r) => r.pid)).size, 1, "the children ran on more than one backend")
        assert.strictEqual(new Set(rows.map((r) => r.txid)).size, 1, "the children ran in more than one transaction")

        const intervals = rows
          .map((r) => ({ started: Number(r.started), ended: Number(r.ended) }))
          .sort((a, b) => a.started - b.started)
        for (const { ended, started } of intervals) assert.isAtLeast(ended - started, 20_000)
        for (let k = 1; k < intervals.length; k++) {
          assert.isAtLeast(
            intervals[k]!.started,
            intervals[k - 1]!.ended,
            `statements ${k - 1} and ${k} of the transaction overlapped`
          )
        }
      }))

    it.effect("two streams consumed one after the other in one transaction both complete", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const result = yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* sql`INSERT INTO ${sql(table)} (note) VALUES ('sequential')`
            // More rows than one cursor chunk, so each stream takes several round trips.
            const a = yield* Stream.runCollect(sql<{ n: number }>`SELECT generate_series(1, 300) AS n`.stream)
            const b = yield* Stream.runCollect(
              sql<{ n: number }>`SELECT generate_series(1001, 1300) AS n`.stream
            )
            const [{ count }] = yield* sql<{ count: number }>`SELECT count(*)::int AS count FROM ${sql(table)}
              WHERE note = 'sequential'`
            return {
              a: Chunk.toReadonlyArray(a).map((r) => r.n),
              b: Chunk.toReadonlyArray(b).map((r) => r.n),
              count
            }
          })
        )
        assert.deepStrictEqual(result, {
          a: Array.range(1, 300),
          b: Array.range(1001, 1300),
          count: 1
        })
        const [{ count }] = yield* sql<{ count: number }>`SELECT count(*)::int AS count FROM ${sql(table)}
          WHERE note = 'sequential'`
        assert.strictEqual(count, 1)
      }))

    it.effect("interleaving two streams in one transaction fails with SqlError and rolls the transaction back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pool = yield* PgPool.PgPool
        const a = sql<{ n: number }>`SELECT generate_series(1, 300) AS n`.stream
        const b = sql<{ n: number }>`SELECT generate_series(1001, 1300) AS n`.stream
        for (
          const [name, combine] of [
            ["zip", Stream.zip(a, b)],
            ["interleave", Stream.interleave(a, b)],
            ["merge", Stream.merge(a, b)]
          ] as const
        ) {
          const error = yield* sql.withTransaction(
            Effect.zipRight(
              sql`INSERT INTO ${sql(table)} (note) VALUES (${`interleaved:${name}`})`,
              Stream.runCollect(combine as Stream.Stream<unknown, SqlError>)
            )
          ).pipe(Effect.flip)
          assert.isTrue(isStreamOpenError(error), `${name}: ${String(error)}`)
          const [{ count }] = yield* sql<{ count: number }>`SELECT count(*)::int AS count FROM ${sql(table)}
            WHERE note = ${`interleaved:${name}`}`
          assert.strictEqual(count, 0, `${name}: the transaction was not rolled back`)
        }
        // The transaction's connection came back clean and usable.
        const stats = yield* pool.stats
        assert.strictEqual(stats.inUse, 0)
        const rows = yield* sql.withTransaction(Stream.runCollect(a))
        assert.strictEqual(Chunk.size(rows), 300)
      }))

    it.effect("a statement in the same transaction while a stream is open fails with SqlError and rolls back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        let chunksSeen = 0
        const error = yield* sql.withTransaction(
          Effect.zipRight(
            sql`INSERT INTO ${sql(table)} (note) VALUES ('statement-during-stream')`,
            sql<{ n: number }>`SELECT generate_series(1, 300) AS n`.stream.pipe(
              Stream.mapChunksEffect((chunk) => {
                chunksSeen++
                return Effect.as(sql`SELECT 1`, chunk)
              }),
              Stream.runDrain
            )
          )
        ).pipe(Effect.flip)
        assert.isTrue(isStreamOpenError(error), String(error))
        assert.strictEqual(chunksSeen, 1, "the statement did not fail at once")
        const [{ count }] = yield* sql<{ count: number }>`SELECT count(*)::int AS count FROM ${sql(table)}
          WHERE note = 'statement-during-stream'`
        assert.strictEqual(count, 0, "the transaction was not rolled back")

        // A statement from a concurrent child fiber fails the same way, and the stream goes on.
        const childExit = yield* sql.withTransaction(
          sql<{ n: number }>`SELECT generate_series(1, 300) AS n`.stream.pipe(
            Stream.mapEffect(() => Effect.flatMap(Effect.fork(sql`SELECT 1`), Fiber.await)),
            Stream.runHead,
            Effect.map(Option.getOrThrow)
          )
        )
        assert.isTrue(Exit.isFailure(childExit) && isStreamOpenError(Cause.squash(childExit.cause)))
        const stats = yield* Effect.flatMap(PgPool.PgPool, (pool) => pool.stats)
        assert.strictEqual(stats.inUse, 0)
      }))
  })
})
