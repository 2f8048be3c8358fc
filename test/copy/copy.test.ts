/**
 * COPY as Effect streams (issue 17 lines 1 and 3), through `PgPool` and the `PgClient` our
 * layers provide, against the real server: the sink's row count, the stream's chunks, which
 * connection a copy runs on (the transaction's, else a lease held for its scope), and what an
 * interruption, a failing source and a rejected row leave behind — no row, a clean connection.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { assert, describe, it, layer } from "@effect/vitest"
import { PgCopy, PgPool } from "@scoped-pool/pg"
import { PgCopyError, PgQueryError } from "@scoped-pool/pg/PgError"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { activeCount, statesOf, withClient } from "../support/backends.js"
import * as TcpProxy from "../support/TcpProxy.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

// One connection: "the same connection" and "a clean connection" are checked by its backend pid.
const Pool = PgPool.layer({
  url: Redacted.make(url),
  applicationName,
  max: 1,
  min: 1,
  acquireTimeout: "1 second",
  cancelTimeout: "2 seconds"
})

const admin = (sql: string) => Effect.promise(() => withClient(url, (client) => client.query(sql)))
const countOf = (table: string) =>
  Effect.map(admin(`SELECT count(*)::int AS n FROM ${table}`), (r) => (r.rows[0] as { n: number }).n)
const table = (name: string) =>
  Effect.acquireRelease(
    Effect.as(admin(`DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} (a int PRIMARY KEY, b text)`), name),
    () => Effect.orDie(admin(`DROP TABLE IF EXISTS ${name}`))
  )

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "utf8"))
const lines = (from: number, to: number) => {
  let s = ""
  for (let i = from; i <= to; i++) s += `${i}\trow ${i}\n`
  return bytes(s)
}

/** The pool's backend pid, read with a statement: the same pid means the same, clean, connection. */
const backendPid = Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`)
  .pipe(Effect.map((rows) => rows[0]!.pid))

const text = (chunks: Iterable<Uint8Array>) => Buffer.concat([...chunks]).toString("utf8")

class SourceFailed extends Data.TaggedError("SourceFailed")<{}> {}

/** A slow export: a row about every millisecond, so that it is still running when the test acts. */
const slowExport = "COPY (SELECT g, repeat('x', 200), pg_sleep(0.001) FROM generate_series(1, 100000) g) TO STDOUT"

describe("1. copyFrom and copyTo on PgPool and on its PgClient", () => {
  layer(Pool, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("1. copyFrom is a Sink of Uint8Array that completes with the row count from CommandComplete", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_api_from")
        const pg = yield* PgPool.PgPool
        const loaded = yield* Stream.run(
          Stream.make(lines(1, 1000), lines(1001, 1500), bytes(""), lines(1501, 2000)),
          pg.copyFrom(`COPY ${t} (a, b) FROM STDIN`)
        )
        assert.strictEqual(loaded, 2000)
        assert.strictEqual(yield* countOf(t), 2000)
      }))

    it.scoped("1. copyTo is a Stream of Uint8Array chunks, each of whole rows", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const chunks = yield* Stream.runCollect(
          pg.copyTo("COPY (SELECT g, 'row ' || g FROM generate_series(1, 20000) g) TO STDOUT")
        )
        const all = text(chunks)
        assert.strictEqual(all.split("\n").length - 1, 20000)
        assert.isTrue(all.startsWith("1\trow 1\n") && all.endsWith("20000\trow 20000\n"))
        for (const chunk of chunks) assert.strictEqual(chunk[chunk.length - 1], 10)
        assert.isBelow(chunks.length, 2000)
      }))

    it.scoped("1. on the PgClient our layers provide, as an extension (SqlError, the PgCopyError its cause), and through PgCopy's accessors", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_api_client")
        const pg = yield* PgPool.PgPool
        assert.strictEqual(yield* Stream.run(Stream.make(lines(1, 3)), pg.sql.copyFrom(`COPY ${t} FROM STDIN`)), 3)
        assert.strictEqual(yield* Stream.run(Stream.make(lines(4, 5)), PgCopy.copyFrom(`COPY ${t} FROM STDIN`)), 2)
        const out = yield* Stream.runCollect(PgCopy.copyTo(`COPY ${t} TO STDOUT`))
        assert.strictEqual(text(out).split("\n").length - 1, 5)
        const error = yield* Effect.flip(Stream.run(Stream.make(lines(5, 5)), pg.sql.copyFrom(`COPY ${t} FROM STDIN`)))
        assert.instanceOf(error, SqlError)
        assert.instanceOf(error.cause, PgCopyError)
        assert.strictEqual((error.cause as PgCopyError).code, "23505")
      }))

    it.scoped("1. inside withTransaction they use the transaction's connection, and roll back with it", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_api_tx")
        const pg = yield* PgPool.PgPool
        const sql = pg.sql
        const outcome = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO ${sql(t)} VALUES (0, 'zero')`
          const pid = yield* backendPid
          const copied = yield* Stream.runCollect(pg.copyTo("COPY (SELECT pg_backend_pid()) TO STDOUT"))
          assert.strictEqual(Number(text(copied).trim()), pid)
          assert.strictEqual(yield* Stream.run(Stream.make(lines(1, 10)), pg.copyFrom(`COPY ${t} FROM STDIN`)), 10)
          // the copy sees the transaction's own row, the server does not yet
          const inside = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(t)}`
          assert.strictEqual(inside[0]!.n, 11)
          assert.strictEqual(yield* countOf(t), 0)
          return yield* Effect.fail("roll back")
        })))
        assert.isTrue(Exit.isFailure(outcome))
        assert.strictEqual(yield* countOf(t), 0)
      }))

    it.scoped("1. inside withTransaction a copy holds the connection: another statement of the transaction fails at once", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const sql = pg.sql
        const message = yield* sql.withTransaction(
          pg.copyTo(slowExport).pipe(
            Stream.take(1),
            Stream.mapEffect(() => Effect.flip(sql`SELECT 1`)),
            Stream.runHead,
            Effect.map((error) => error._tag === "Some" ? error.value.message : "")
          )
        )
        assert.include(message, "open on this transaction's connection")
        assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "COPY%")), 0)
      }))

    it.scoped("1. outside a transaction, a lease held for the copy's scope, returned clean after it", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const sql = pg.sql
        const pid = yield* backendPid
        const during = yield* pg.copyTo(slowExport).pipe(
          Stream.take(1),
          // the only connection is the copy's: a statement cannot get one until the copy's scope ends
          Stream.mapEffect(() => Effect.flip(sql`SELECT 1`)),
          Stream.runHead
        )
        assert.strictEqual(during._tag, "Some")
        assert.include(during._tag === "Some" ? during.value.message : "", "no resource after")
        assert.strictEqual(yield* backendPid, pid)
        assert.deepStrictEqual(yield* Effect.promise(() => statesOf(url, applicationName)), ["idle"])
        const stats = yield* pg.stats
        assert.strictEqual(stats.inUse, 0)
      }))

    it.scoped("1. a COPY issued through plain query fails typed instead of killing the connection", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_api_query")
        const sql = (yield* PgPool.PgPool).sql
        const pid = yield* backendPid
        const into = yield* Effect.flip(sql`COPY ${sql(t)} FROM STDIN`)
        assert.instanceOf(into.cause, PgQueryError)
        assert.include(into.message, "COPY … FROM STDIN cannot run as a statement")
        assert.include(into.message, "run it with copyFrom")
        const out = yield* Effect.flip(sql.unsafe(`COPY ${t} TO STDOUT`))
        assert.include(out.message, "run it with copyTo")
        assert.strictEqual(yield* backendPid, pid)
      }))

    it.scoped("1. copyFrom and copyTo run COPY statements only: anything else fails typed, unsent", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_api_notcopy")
        const pg = yield* PgPool.PgPool
        const error = yield* Effect.flip(Stream.run(Stream.make(lines(1, 1)), pg.copyFrom(`DELETE FROM ${t}`)))
        assert.strictEqual((error as PgCopyError).reason, "NotCopy")
        const wrong = yield* Effect.flip(Stream.runDrain(pg.copyTo(`COPY ${t} FROM STDIN`)))
        assert.strictEqual((wrong as PgCopyError).reason, "WrongDirection")
        assert.include(wrong.message, "run it with copyFrom")
      }))

    it.scoped("1. copyFrom sends its data ahead of the server's CopyInResponse; a COPY that reads none of it (FROM PROGRAM) completes with its own row count, nothing of the input loaded", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_api_program")
        const pg = yield* PgPool.PgPool
        const pid = yield* backendPid
        // The whole input (a few rows, 64 KB) goes out before the server answers the COPY, which
        // reads a program's output instead: what went ahead is ignored.
        const rows = yield* Stream.run(
          Stream.make(lines(1, 3), new Uint8Array(Buffer.alloc(64 * 1024, "9\tx\n"))),
          pg.copyFrom(`COPY ${t} FROM PROGRAM 'printf "101\\tp\\n102\\tq\\n"'`)
        )
        assert.strictEqual(rows, 2)
        const loaded = yield* admin(`SELECT a, b FROM ${t} ORDER BY a`)
        assert.deepStrictEqual(loaded.rows, [{ a: 101, b: "p" }, { a: 102, b: "q" }])
        assert.strictEqual(yield* backendPid, pid)
        assert.strictEqual(yield* Stream.run(Stream.make(lines(1, 3)), pg.copyFrom(`COPY ${t} FROM STDIN`)), 3)
        assert.strictEqual(yield* countOf(t), 5)
      }))

    it.scoped("1. a statement that is not a COPY fails before it takes a connection: with the only one leased, at once", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const held = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          pg.use(() => Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release)))
        )
        yield* Deferred.await(held)
        // A lease would wait for the one connection (acquireTimeout 1 s) and fail with a PoolError.
        const error = yield* Effect.flip(Stream.run(Stream.make(lines(1, 1)), pg.copyFrom("DELETE FROM nowhere")))
        assert.strictEqual((error as PgCopyError).reason, "NotCopy")
        const wrong = yield* Effect.flip(Stream.runDrain(pg.copyTo("SELECT 1")))
        assert.strictEqual((wrong as PgCopyError).reason, "NotCopy")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
      }))

    it.scoped("1. copyTo's options: readBatch 0 reads as data comes; an infinite readBatch or a highWaterMark of 0 is a defect, nothing sent", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const sql = "COPY (SELECT g FROM generate_series(1, 5000) g) TO STDOUT"
        for (const readBatch of [0, "5 millis"] as const) {
          assert.strictEqual(text(yield* Stream.runCollect(pg.copyTo(sql, { readBatch }))).split("\n").length - 1, 5000)
        }
        const infinite = yield* Effect.exit(Stream.runDrain(pg.copyTo(sql, { readBatch: Duration.infinity })))
        assert.isTrue(Exit.isFailure(infinite) && Cause.isDie(infinite.cause))
        assert.include(String(Cause.squash((infinite as Exit.Failure<unknown, unknown>).cause)), "readBatch")
        const empty = yield* Effect.exit(Stream.runDrain(pg.copyTo(sql, { highWaterMark: 0 })))
        assert.isTrue(Exit.isFailure(empty) && Cause.isDie(empty.cause))
      }))
  })
})

describe("3. interruption and failure", () => {
  layer(Pool, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("3. interrupting a copyFrom sends CopyFail and waits for the server's error and ReadyForQuery: no row, a clean connection", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_int_from")
        const pg = yield* PgPool.PgPool
        const pid = yield* backendPid
        const sent = yield* Deferred.make<void>()
        const source = Stream.concat(
          Stream.make(lines(1, 100)),
          Stream.fromEffect(Effect.zipRight(Deferred.succeed(sent, undefined), Effect.never))
        )
        const fiber = yield* Effect.fork(Stream.run(source, pg.copyFrom(`COPY ${t} FROM STDIN`)))
        yield* Deferred.await(sent)
        assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "COPY%")), 1)
        yield* Fiber.interrupt(fiber)
        // resumed after the server's answer: the backend is idle, nothing was loaded
        assert.deepStrictEqual(yield* Effect.promise(() => statesOf(url, applicationName)), ["idle"])
        assert.strictEqual(yield* countOf(t), 0)
        assert.strictEqual(yield* backendPid, pid)
      }))

    it.scoped("3. interrupting a copyTo cancels it on the server (exact cancel, as statements)", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        const pid = yield* backendPid
        const first = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          Stream.runDrain(Stream.tap(pg.copyTo(slowExport), () => Deferred.succeed(first, undefined)))
        )
        yield* Deferred.await(first)
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "COPY%")), 0)
        // and a stream that stops early (take) ends the same way
        const head = yield* Stream.runCollect(Stream.take(pg.copyTo(slowExport), 1))
        assert.strictEqual(head.length, 1)
        assert.strictEqual(yield* Effect.promise(() => activeCount(url, applicationName, "COPY%")), 0)
        assert.strictEqual(yield* backendPid, pid)
      }))

    it.scoped("3. a source stream that fails aborts the copy with its error as cause: no row, a clean connection", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_src_fail")
        const pg = yield* PgPool.PgPool
        const pid = yield* backendPid
        const failure = new SourceFailed()
        const exit = yield* Effect.exit(
          Stream.run(
            Stream.concat(Stream.make(lines(1, 50)), Stream.fail(failure)),
            pg.copyFrom(`COPY ${t} FROM STDIN`)
          )
        )
        assert.deepStrictEqual(exit, Exit.fail(failure))
        assert.strictEqual(yield* countOf(t), 0)
        assert.strictEqual(yield* backendPid, pid)
        // a source that dies the same way
        const died = yield* Effect.exit(
          Stream.run(Stream.concat(Stream.make(lines(1, 50)), Stream.die("boom")), pg.copyFrom(`COPY ${t} FROM STDIN`))
        )
        assert.deepStrictEqual(died, Exit.die("boom"))
        assert.strictEqual(yield* countOf(t), 0)
        assert.strictEqual(yield* backendPid, pid)
      }))

    it.scoped("3. a server error mid-copy (a bad row, a constraint) is a typed error with the line number", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_bad_row")
        const pg = yield* PgPool.PgPool
        const pid = yield* backendPid
        const bad = yield* Effect.flip(
          Stream.run(Stream.make(bytes("1\tone\n2\ttwo\nthree\tthree\n4\tfour\n")), pg.copyFrom(`COPY ${t} FROM STDIN`))
        )
        assert.instanceOf(bad, PgCopyError)
        const e = bad as PgCopyError
        assert.strictEqual(e.reason, "Rejected")
        assert.strictEqual(e.code, "22P02")
        assert.strictEqual(e.line, 3)
        assert.include(e.message, "COPY FROM STDIN failed at line 3 of the data")
        assert.include(e.message, "nothing was loaded")
        const duplicate = (yield* Effect.flip(
          Stream.run(Stream.make(lines(1, 3), lines(3, 3)), pg.copyFrom(`COPY ${t} FROM STDIN`))
        )) as PgCopyError
        assert.strictEqual(duplicate.code, "23505")
        assert.strictEqual(duplicate.line, 4)
        assert.strictEqual(duplicate.constraint, "copy_bad_row_pkey")
        assert.strictEqual(yield* countOf(t), 0)
        assert.strictEqual(yield* backendPid, pid)
      }))

    it.scoped("3. a rejected row stops the sink: an endless source after it is not read to its end", () =>
      Effect.gen(function*() {
        const t = yield* table("copy_bad_endless")
        const pg = yield* PgPool.PgPool
        let pulls = 0
        const error = yield* Effect.flip(
          Stream.run(
            Stream.concat(
              Stream.make(bytes("x\tbad\n")),
              Stream.repeatEffect(Effect.sync(() => {
                pulls++
                return lines(1, 100)
              }))
            ),
            pg.copyFrom(`COPY ${t} FROM STDIN`)
          )
        )
        assert.strictEqual((error as PgCopyError).line, 1)
        // stopped within a few MB of the error (before the sink gave the event loop turns it went
        // on for hundreds of MB: the server's error was not read while the socket took the data)
        assert.isBelow(pulls, 20_000)
        assert.strictEqual(yield* countOf(t), 0)
      }))
  })
})

describe("3. the wait for the server's answer to CopyFail is bounded by cancelTimeout", () => {
  it.scopedLive("a server that never answers: the interrupt returns after cancelTimeout and the connection is destroyed", () =>
    Effect.gen(function*() {
      // first, so that it is dropped last: after the proxy's close has ended the stranded backend
      yield* table("copy_bound")
      const target = new URL(url)
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => TcpProxy.start({ host: target.hostname, port: Number(target.port) })),
        (proxy) => Effect.promise(() => proxy.close())
      )
      const proxied = new URL(url)
      proxied.hostname = proxy.host
      proxied.port = String(proxy.port)
      const pg = yield* PgPool.make({
        url: Redacted.make(proxied.toString()),
        applicationName,
        max: 1,
        cancelTimeout: "300 millis"
      })
      const sent = yield* Deferred.make<void>()
      const source = Stream.concat(
        Stream.make(lines(1, 10)),
        Stream.fromEffect(Effect.zipRight(Deferred.succeed(sent, undefined), Effect.never))
      )
      const fiber = yield* Effect.fork(Stream.run(source, pg.copyFrom("COPY copy_bound FROM STDIN")))
      yield* Deferred.await(sent)
      proxy.setMode("blackhole", "existing")
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      const took = Date.now() - started
      assert.isAtLeast(took, 250)
      assert.isBelow(took, 3000)
      const stats = yield* pg.stats
      assert.strictEqual(stats.inUse, 0)
      assert.isAtLeast(stats.retired.dead, 1)
      proxy.setMode("pass", "new")
      assert.deepStrictEqual(yield* pg.sql`SELECT 1 AS one`, [{ one: 1 }])
    }).pipe(Effect.provide(Reactivity.layer)))
})
