/**
 * Drop-in proof: one suite of typical `@effect/sql` / `@effect/sql-pg` usage, run twice — against
 * `@effect/sql-pg`'s own `PgClient.layer` and against our `PgPoolLive` (configured through the
 * `Config` path, from a `ConfigProvider`, never `process.env`). Each case asserts its expected
 * value and records it; the second run asserts that every case gave a deep-equal result.
 *
 * Covered (issue 13 line 6): every `Constructor` helper (the template, identifiers, `unsafe`,
 * `literal`, `in`, `insert`, `update`, `updateValues`, `and`, `or`, `csv`, `join`, `onDialect`,
 * `onDialectOrElse`, `returning`, statements as fragments, `pg.json`), the client's `reserve`,
 * `withTransaction` (nested), `reactive`, `reactiveMailbox`, `safe` and `withoutTransforms`; every
 * `Statement` method (the Effect, `raw`, `values`, `unprepared`, `stream`, `withoutTransform`,
 * `compile`, `toJSON`) and a `Statement.Transformer`; `SqlSchema` (findAll, findOne, single, void); `SqlResolver` (ordered,
 * grouped, findById, void, and inside a transaction); `Model.makeRepository` and
 * `Model.makeDataLoaders`; `PgMigrator` from a folder and from records; listen/notify; and
 * errors (SQLSTATE, constraint and detail of a violation).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as PgMigrator from "@effect/sql-pg/PgMigrator"
import * as Migrator from "@effect/sql/Migrator"
import * as Model from "@effect/sql/Model"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as SqlResolver from "@effect/sql/SqlResolver"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as Statement from "@effect/sql/Statement"
import { afterAll, assert, describe, it, layer } from "@effect/vitest"
import { PgPool, PgPoolLive } from "@scoped-pool/pg"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Str from "effect/String"
import * as TestServices from "effect/TestServices"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { eventuallyNoBackends } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

// Our LISTEN connection carries `<applicationName>-listen`: check that it is gone too.
afterAll(() => Effect.runPromise(eventuallyNoBackends(url, `${applicationName}-listen`, { within: "2 seconds" })))

const migrationsRoot = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "migrations")

/** Every case's result under `PgClient.layer`, by case name; the `PgPoolLive` run must match it. */
const reference = new Map<string, unknown>()
const observed = new Map<string, unknown>()

type Client = SqlClient.SqlClient | PgClient.PgClient

const Item = Schema.Struct({ id: Schema.Number, name: Schema.String })

class Person extends Model.Class<Person>("Person")({
  id: Model.Generated(Schema.Number),
  name: Schema.String,
  age: Schema.Number
}) {}

/** The run's tables, created before its cases and dropped after them (also when a case fails). */
const tables = (run: string) => {
  const p = `compat_${run}_`
  const names = {
    items: `${p}items`,
    writes: `${p}writes`,
    ledger: `${p}ledger`,
    widgets: `${p}widgets`,
    migrations: `${p}migrations`,
    people: `${p}people`,
    gadgets: `${p}gadgets`,
    recordMigrations: `${p}record_migrations`
  }
  const dropAll = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const name of Object.values(names)) yield* sql`DROP TABLE IF EXISTS ${sql(name)}`
  })
  const create = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* dropAll
    yield* sql`CREATE TABLE ${sql(names.items)} (id integer PRIMARY KEY, name text NOT NULL, tags text[] NOT NULL)`
    yield* sql`INSERT INTO ${sql(names.items)} ${
      sql.insert([
        { id: 1, name: "one", tags: ["odd"] },
        { id: 2, name: "two", tags: ["even", "prime"] },
        { id: 3, name: "three", tags: ["odd", "prime"] },
        { id: 4, name: "four", tags: ["even"] },
        { id: 5, name: "five", tags: ["odd", "prime"] }
      ])
    }`
    yield* sql`CREATE TABLE ${sql(names.writes)} (id integer PRIMARY KEY, name text NOT NULL, meta jsonb)`
    yield* sql`CREATE TABLE ${sql(names.ledger)} (id serial PRIMARY KEY, note text NOT NULL)`
    yield* sql`CREATE TABLE ${sql(names.people)} (id serial PRIMARY KEY, name text NOT NULL, age integer NOT NULL)`
  })
  const live = Layer.scopedDiscard(Effect.acquireRelease(Effect.orDie(create), () => Effect.orDie(dropAll)))
  return { names, live }
}

/**
 * Subscribes, pings until the subscription has seen a ping (a NOTIFY before the LISTEN is active
 * is lost; this bounded retry waits on the server, never sleeps), then sends `payloads` and
 * returns what the subscriber received, pings left out.
 */
const listenFor = <E>(
  subscription: Stream.Stream<string, SqlError>,
  notify: (payload: string) => Effect.Effect<unknown, E>,
  payloads: ReadonlyArray<string>
) =>
  Effect.gen(function*() {
    const listening = yield* Deferred.make<void>()
    const received = yield* subscription.pipe(
      Stream.tap(() => Deferred.succeed(listening, undefined)),
      Stream.filter((payload) => payload !== "ping"),
      Stream.take(payloads.length),
      Stream.runCollect,
      Effect.fork
    )
    yield* notify("ping").pipe(
      Effect.zipRight(Deferred.isDone(listening)),
      Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (done) => done }),
      Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("LISTEN never became active") })
    )
    for (const payload of payloads) yield* notify(payload)
    const collected = yield* Fiber.join(received).pipe(
      Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("notifications not delivered") })
    )
    return Chunk.toReadonlyArray(collected)
  })

const compatSuite = (
  run: string,
  title: string,
  clientLayer: Layer.Layer<Client, unknown>,
  role: "reference" | "candidate"
) => {
  const { live, names } = tables(run)
  const isReference = role === "reference"
  const results = isReference ? reference : observed

  /** Records a case's result and, in the second run, asserts it equals the first run's. */
  const record = (name: string, value: unknown) =>
    Effect.sync(() => {
      results.set(name, value)
      if (!isReference) {
        assert.isTrue(reference.has(name), `case "${name}" has no result from the PgClient.layer run`)
        assert.deepStrictEqual(value, reference.get(name), `case "${name}" differs from PgClient.layer`)
      }
    })

  // Reactivity.layer is the very layer both clients provide to themselves: memoised, so the
  // reactive cases' invalidations reach the client's own Reactivity.
  layer(Layer.provideMerge(live, Layer.merge(clientLayer, Reactivity.layer)), { timeout: "60 seconds" })(
    title,
    (it) => {
      it.effect("sql template binds numbers, strings, null, Date and bigint", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const date = new Date("2024-02-29T12:34:56.789Z")
          const rows = yield* sql<{
            i: number
            f: number
            s: string
            n: string | null
            d: Date
            b: string
            big: string
            t: boolean
            app: string
          }>`SELECT ${42}::int AS i, ${1.5}::float8 AS f, ${"it's \"quoted\" – ü"}::text AS s, ${null}::text AS n,
          ${date}::timestamptz AS d, ${9007199254740993n}::int8 AS b, ${123456789012345678901234567890n}::numeric AS big,
          ${true}::bool AS t, current_setting('application_name') AS app`
          assert.strictEqual(rows.length, 1)
          const row = rows[0]!
          assert.instanceOf(row.d, Date)
          const value = { ...row, d: row.d.toISOString() }
          assert.deepStrictEqual(value, {
            i: 42,
            f: 1.5,
            s: "it's \"quoted\" – ü",
            n: null,
            d: "2024-02-29T12:34:56.789Z",
            b: "9007199254740993",
            big: "123456789012345678901234567890",
            t: true,
            app: applicationName
          })
          yield* record("params", value)
        }))

      it.effect("sql.in, = ANY(array) and text[] columns", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const items = sql(names.items)
          const inList = yield* sql<{ id: number }>`SELECT id FROM ${items} WHERE id IN ${
            sql.in([1, 3, 5])
          } ORDER BY id`
          const inColumn = yield* sql<{ id: number }>`SELECT id FROM ${items} WHERE ${sql.in("id", [2, 4])} ORDER BY id`
          const any = yield* sql<{ id: number }>`SELECT id FROM ${items} WHERE id = ANY(${[1, 2, 3]}) ORDER BY id`
          const tagged = yield* sql<{ id: number; tags: Array<string> }>`SELECT id, tags FROM ${items}
          WHERE tags @> ${["prime"]}::text[] ORDER BY id`
          const value = {
            inList: inList.map((r) => r.id),
            inColumn: inColumn.map((r) => r.id),
            any: any.map((r) => r.id),
            tagged
          }
          assert.deepStrictEqual(value, {
            inList: [1, 3, 5],
            inColumn: [2, 4],
            any: [1, 2, 3],
            tagged: [{ id: 2, tags: ["even", "prime"] }, { id: 3, tags: ["odd", "prime"] }, {
              id: 5,
              tags: ["odd", "prime"]
            }]
          })
          yield* record("arrays", value)
        }))

      it.effect("identifiers, sql.insert (one and many) with RETURNING, sql.update", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const writes = sql(names.writes)
          const one = yield* sql<{ id: number; name: string }>`INSERT INTO ${writes} ${
            sql.insert({ id: 101, name: "a" })
          } RETURNING id, name`
          const many = yield* sql<{ id: number; name: string }>`INSERT INTO ${writes} ${
            sql.insert([{ id: 102, name: "b" }, { id: 103, name: "c" }]).returning("*")
          }`
          const updated = yield* sql<{ id: number; name: string }>`UPDATE ${writes} SET ${
            sql.update({ id: 102, name: "B" }, ["id"])
          } WHERE ${sql("id")} = ${102} RETURNING ${sql("id")}, ${sql("name")}`
          const after = yield* sql<{ id: number; name: string }>`SELECT ${sql("id")}, ${sql("name")} FROM ${writes}
          WHERE id BETWEEN 101 AND 199 ORDER BY id`
          const value = {
            one,
            many: many.map(({ id, name }) => ({ id, name })),
            updated,
            after
          }
          assert.deepStrictEqual(value, {
            one: [{ id: 101, name: "a" }],
            many: [{ id: 102, name: "b" }, { id: 103, name: "c" }],
            updated: [{ id: 102, name: "B" }],
            after: [{ id: 101, name: "a" }, { id: 102, name: "B" }, { id: 103, name: "c" }]
          })
          yield* record("insert/update", value)
        }))

      it.effect("pg.json into a jsonb column reads back as the same value", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const pg = yield* PgClient.PgClient
          const meta = { a: 1, b: [1, "two", null], c: { d: "x", e: true }, "quote\"d": "it's" }
          yield* sql`INSERT INTO ${sql(names.writes)} ${sql.insert({ id: 201, name: "json", meta: pg.json(meta) })}`
          const rows = yield* sql<{ meta: unknown; a: number }>`SELECT meta, (meta->>'a')::int AS a FROM ${
            sql(names.writes)
          } WHERE id = ${201}`
          const inline = yield* sql<{ v: unknown }>`SELECT ${pg.json({ x: [1, 2] })}::jsonb AS v`
          const value = { rows, inline }
          assert.deepStrictEqual(value, { rows: [{ meta, a: 1 }], inline: [{ v: { x: [1, 2] } }] })
          yield* record("json", value)
        }))

      it.effect("SqlSchema findAll, findOne, single and void", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const items = sql(names.items)
          const findAll = SqlSchema.findAll({
            Request: Schema.Number,
            Result: Item,
            execute: (min) => sql`SELECT id, name FROM ${items} WHERE id >= ${min} ORDER BY id`
          })
          const findOne = SqlSchema.findOne({
            Request: Schema.Number,
            Result: Item,
            execute: (id) => sql`SELECT id, name FROM ${items} WHERE id = ${id}`
          })
          const single = SqlSchema.single({
            Request: Schema.Number,
            Result: Item,
            execute: (id) => sql`SELECT id, name FROM ${items} WHERE id = ${id}`
          })
          const insert = SqlSchema.void({
            Request: Item,
            execute: (item) => sql`INSERT INTO ${sql(names.writes)} ${sql.insert(item)}`
          })
          const all = yield* findAll(4)
          const found = yield* findOne(2)
          const missing = yield* findOne(99)
          const exactly = yield* single(3)
          const none = yield* Effect.exit(single(99))
          assert.isTrue(Exit.isFailure(none) && Cause.isNoSuchElementException(Cause.squash(none.cause)))
          yield* insert({ id: 301, name: "void" })
          const inserted = yield* sql<{ id: number; name: string }>`SELECT id, name FROM ${
            sql(names.writes)
          } WHERE id = ${301}`
          const value = {
            all,
            found: Option.getOrNull(found),
            missing: Option.getOrNull(missing),
            exactly,
            noneFails: Exit.isFailure(none),
            inserted
          }
          assert.deepStrictEqual(value, {
            all: [{ id: 4, name: "four" }, { id: 5, name: "five" }],
            found: { id: 2, name: "two" },
            missing: null,
            exactly: { id: 3, name: "three" },
            noneFails: true,
            inserted: [{ id: 301, name: "void" }]
          })
          yield* record("SqlSchema", value)
        }))

      it.effect("SqlResolver.findById and ordered batch concurrent requests into one statement", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const batches: Array<ReadonlyArray<unknown>> = []
          const byId = yield* SqlResolver.findById("CompatItemById", {
            Id: Schema.Number,
            Result: Item,
            ResultId: (item) => item.id,
            execute: (ids) =>
              Effect.zipRight(
                Effect.sync(() => batches.push(["findById", ...ids])),
                sql`SELECT id, name FROM ${sql(names.items)} WHERE id IN ${sql.in(ids)}`
              )
          })
          const insert = yield* SqlResolver.ordered("CompatInsertWrite", {
            Request: Item,
            Result: Item,
            execute: (rows) =>
              Effect.zipRight(
                Effect.sync(() => batches.push(["ordered", ...rows.map((r) => r.id)])),
                sql`INSERT INTO ${sql(names.writes)} ${sql.insert(rows)} RETURNING id, name`
              )
          })
          const found = yield* Effect.forEach([5, 1, 99, 3], (id) => byId.execute(id), {
            concurrency: "unbounded",
            batching: true
          })
          const inserted = yield* Effect.forEach(
            [401, 402, 403],
            (id) => insert.execute({ id, name: `w${id}` }),
            { concurrency: "unbounded", batching: true }
          )
          const value = {
            found: found.map(Option.getOrNull),
            inserted,
            batches: batches.map((b) => [b[0], ...b.slice(1).map(Number).sort((x, y) => x - y)])
          }
          assert.deepStrictEqual(value, {
            found: [{ id: 5, name: "five" }, { id: 1, name: "one" }, null, { id: 3, name: "three" }],
            inserted: [{ id: 401, name: "w401" }, { id: 402, name: "w402" }, { id: 403, name: "w403" }],
            batches: [["findById", 1, 3, 5, 99], ["ordered", 401, 402, 403]]
          })
          yield* record("SqlResolver", value)
        }))

      it.effect("withTransaction returns its value and commits", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const ledger = sql(names.ledger)
          const value = yield* sql.withTransaction(
            Effect.gen(function*() {
              yield* sql`INSERT INTO ${ledger} (note) VALUES (${"tx:committed"})`
              const [{ n }] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${ledger} WHERE note LIKE 'tx:%'`
              return { inside: n }
            })
          )
          const after = yield* sql<{ note: string }>`SELECT note FROM ${ledger} WHERE note LIKE 'tx:%' ORDER BY id`
          const result = { value, after: after.map((r) => r.note) }
          assert.deepStrictEqual(result, { value: { inside: 1 }, after: ["tx:committed"] })
          yield* record("withTransaction value", result)
        }))

      it.effect("nested withTransaction: an inner failure rolls back its savepoint only, an outer failure everything", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const ledger = sql(names.ledger)
          const note = (text: string) => sql`INSERT INTO ${ledger} (note) VALUES (${text})`
          const notes = (prefix: string) =>
            Effect.map(
              sql<{ note: string }>`SELECT note FROM ${ledger} WHERE note LIKE ${prefix + "%"} ORDER BY id`,
              (rows) => rows.map((r) => r.note)
            )

          const inner = yield* sql.withTransaction(
            Effect.gen(function*() {
              yield* note("nested:outer-before")
              const failed = yield* sql.withTransaction(
                Effect.zipRight(note("nested:inner"), Effect.fail("inner failed" as const))
              ).pipe(Effect.flip)
              const seenInside = yield* notes("nested:")
              yield* note("nested:outer-after")
              return { failed, seenInside }
            })
          )
          const afterInner = yield* notes("nested:")

          const outer = yield* sql.withTransaction(
            Effect.gen(function*() {
              yield* note("rollback:outer")
              yield* sql.withTransaction(note("rollback:inner-committed"))
              const seenInside = yield* notes("rollback:")
              return yield* Effect.fail({ seenInside })
            })
          ).pipe(Effect.flip)
          const afterOuter = yield* notes("rollback:")

          const defect = yield* sql.withTransaction(
            Effect.zipRight(note("defect:row"), Effect.dieMessage("boom"))
          ).pipe(Effect.exit)
          const afterDefect = yield* notes("defect:")

          const value = { inner, afterInner, outer, afterOuter, defect: Exit.isFailure(defect), afterDefect }
          assert.deepStrictEqual(value, {
            inner: { failed: "inner failed", seenInside: ["nested:outer-before"] },
            afterInner: ["nested:outer-before", "nested:outer-after"],
            outer: { seenInside: ["rollback:outer", "rollback:inner-committed"] },
            afterOuter: [],
            defect: true,
            afterDefect: []
          })
          yield* record("nested transactions", value)
        }))

      it.effect("SQL errors are SqlError carrying the server's SQLSTATE in cause.code", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const duplicate = yield* sql`INSERT INTO ${sql(names.items)} ${sql.insert({ id: 1, name: "dup", tags: [] })}`
            .pipe(Effect.flip)
          const syntax = yield* sql`SELEC 1`.pipe(Effect.flip)
          const inTx = yield* sql.withTransaction(sql`SELECT 1 / ${0}::int AS x`).pipe(Effect.flip)
          const after = yield* sql<{ ok: number }>`SELECT 1 AS ok`
          const summary = (e: SqlError) => ({
            isSqlError: e instanceof SqlError,
            tag: e._tag,
            code: (e.cause as { code?: unknown }).code,
            constraint: String((e.cause as { constraint?: unknown }).constraint ?? "").replace(run, "<run>"),
            detail: (e.cause as { detail?: unknown }).detail
          })
          const value = { duplicate: summary(duplicate), syntax: summary(syntax), inTx: summary(inTx), after }
          assert.deepStrictEqual(value, {
            duplicate: {
              isSqlError: true,
              tag: "SqlError",
              code: "23505",
              constraint: "compat_<run>_items_pkey",
              detail: "Key (id)=(1) already exists."
            },
            syntax: { isSqlError: true, tag: "SqlError", code: "42601", constraint: "", detail: undefined },
            inTx: { isSqlError: true, tag: "SqlError", code: "22012", constraint: "", detail: undefined },
            after: [{ ok: 1 }]
          })
          yield* record("errors", value)
        }))

      // A long-lived pool sees schema changes (migrations, deploys): a statement it has run before
      // must still work after ALTER TABLE changes its result type. Run on one connection (a
      // transaction) so that the second SELECT meets whatever the first one left on the session.
      it.effect("SELECT * run before ALTER TABLE ADD COLUMN still works after it", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const altered = sql(`compat_${run}_altered`)
          const value = yield* sql.withTransaction(Effect.gen(function*() {
            yield* sql`CREATE TEMP TABLE ${altered} (id integer PRIMARY KEY, name text) ON COMMIT DROP`
            yield* sql`INSERT INTO ${altered} VALUES (1, 'one')`
            const before = yield* sql`SELECT * FROM ${altered} WHERE id = ${1}`
            yield* sql`ALTER TABLE ${altered} ADD COLUMN extra integer`
            const after = yield* sql`SELECT * FROM ${altered} WHERE id = ${1}`
            return { before, after }
          }))
          assert.deepStrictEqual(value, {
            before: [{ id: 1, name: "one" }],
            after: [{ id: 1, name: "one", extra: null }]
          })
          yield* record("SELECT * after ALTER TABLE", value)
        }))

      it.effect(".values, .raw, .unprepared and a multi-statement text", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const values = yield* sql`SELECT ${1}::int AS a, 'x' AS b UNION ALL SELECT 2, 'y' ORDER BY 1`.values
          const raw = (yield* sql`UPDATE ${sql(names.items)} SET name = name WHERE id <= ${3}`.raw) as {
            rowCount: number
            command: string
          }
          const unprepared = yield* sql<{ n: number }>`SELECT ${7}::int AS n`.unprepared
          // A multi-statement text yields one array of rows per statement.
          const multi: ReadonlyArray<unknown> = yield* sql`SELECT 1 AS a; SELECT 2 AS b`
          const value = { values, raw: { rowCount: raw.rowCount, command: raw.command }, unprepared, multi }
          assert.deepStrictEqual(value, {
            values: [[1, "x"], [2, "y"]],
            raw: { rowCount: 3, command: "UPDATE" },
            unprepared: [{ n: 7 }],
            multi: [[{ a: 1 }], [{ b: 2 }]]
          })
          yield* record("values/raw/unprepared", value)
        }))

      it.effect("helpers: unsafe, literal, and/or, csv, join, onDialect, updateValues, returning fragments, sub-statements", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const items = sql(names.items)
          const writes = sql(names.writes)
          const unsafe = yield* sql.unsafe<{ n: number; s: string }>("SELECT $1::int AS n, $2::text AS s", [5, "five"])
          const literal = yield* sql<{ n: number }>`SELECT ${sql.literal("40 + 2")} AS n`
          const where = yield* sql<{ id: number }>`SELECT id FROM ${items}
          WHERE ${sql.and([sql`id > ${1}`, sql.or(["id < 3", sql`id = ${5}`])])} ORDER BY id`
          const empty = yield* sql<{ id: number }>`SELECT id FROM ${items} WHERE ${sql.and([])} AND ${sql.or([])}
          ORDER BY id`
          const csv = yield* sql<{ id: number; name: string }>`SELECT ${sql.csv(["id", "name"])} FROM ${items}
          WHERE id <= ${2} ${sql.csv("ORDER BY", ["id DESC"])}`
          const joined = yield* sql<{ sum: number }>`SELECT ${
            sql.join(" + ", false)([sql`${1}::int`, sql`${2}::int`, sql`${3}::int`])
          } AS sum`
          const dialect = sql.onDialect({
            sqlite: () => "sqlite",
            pg: () => "pg",
            mysql: () => "mysql",
            mssql: () => "mssql",
            clickhouse: () => "clickhouse"
          })
          const orElse = [
            sql.onDialectOrElse({ pg: () => "pg", orElse: () => "other" }),
            sql.onDialectOrElse({ mysql: () => "mysql", orElse: () => "other" })
          ]
          yield* sql`INSERT INTO ${writes} ${sql.insert([{ id: 501, name: "u1" }, { id: 502, name: "u2" }])}`
          const updatedValues = yield* sql<{ id: number; name: string }>`UPDATE ${writes} SET name = data.name
          FROM ${sql.updateValues([{ id: 501, name: "U1" }, { id: 502, name: "U2" }], "data")}
          WHERE ${writes}.id = data.id::int RETURNING ${writes}.id, ${writes}.name`
          const returning = yield* sql<{ id: number; upper: string }>`INSERT INTO ${writes} ${
            sql.insert({ id: 503, name: "r" }).returning(sql`id, upper(name) AS upper`)
          }`
          // `update(…).returning` ends the statement: on a table of its own.
          const updateReturning = yield* sql.withTransaction(Effect.gen(function*() {
            const one = sql(`compat_${run}_one_row`)
            yield* sql`CREATE TEMP TABLE ${one} (id integer, name text) ON COMMIT DROP`
            yield* sql`INSERT INTO ${one} VALUES (503, 'r')`
            return yield* sql<{ id: number; name: string }>`UPDATE ${one} SET ${
              sql.update({ name: "R" }).returning("id, name")
            }`
          }))
          const sub = sql`SELECT id FROM ${items} WHERE id <= ${2}`
          const nested = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM (${sub}) AS s WHERE s.id > ${0}`
          const value = {
            unsafe,
            literal,
            where: where.map((r) => r.id),
            empty: empty.map((r) => r.id),
            csv,
            joined,
            dialect,
            orElse,
            updatedValues: [...updatedValues].sort((a, b) => a.id - b.id),
            returning,
            updateReturning,
            nested
          }
          assert.deepStrictEqual(value, {
            unsafe: [{ n: 5, s: "five" }],
            literal: [{ n: 42 }],
            where: [2, 5],
            empty: [1, 2, 3, 4, 5],
            csv: [{ id: 2, name: "two" }, { id: 1, name: "one" }],
            joined: [{ sum: 6 }],
            dialect: "pg",
            orElse: ["pg", "other"],
            updatedValues: [{ id: 501, name: "U1" }, { id: 502, name: "U2" }],
            returning: [{ id: 503, upper: "R" }],
            updateReturning: [{ id: 503, name: "R" }],
            nested: [{ n: 2 }]
          })
          yield* record("helpers", value)
        }))

      it.effect("statements: compile (with and without transforms), toJSON, safe, withoutTransforms, an identifier", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const statement = sql`SELECT ${1} AS a, ${sql("Quoted Col")} FROM ${sql(names.items)} WHERE id IN ${
            sql.in([1, 2])
          } AND ${sql.in("name", ["one"])}`
          const value = {
            compiled: statement.compile(),
            compiledWithoutTransform: statement.compile(true),
            json: JSON.parse(JSON.stringify(statement)),
            fragment: Statement.isFragment(statement),
            effect: Effect.isEffect(statement),
            identifier: JSON.parse(JSON.stringify(sql("x"))),
            safe: sql.safe === sql,
            withoutTransforms: sql.withoutTransforms() === sql
          }
          assert.deepStrictEqual(value.compiled, [
            `SELECT $1 AS a, "Quoted Col" FROM "compat_${run}_items" WHERE id IN ($2,$3) AND "name" IN ($4)`,
            [1, 1, 2, "one"]
          ])
          assert.isTrue(value.fragment && value.effect && value.safe && value.withoutTransforms)
          // The run's own table name aside.
          yield* record("compile/toJSON", JSON.parse(JSON.stringify(value).replaceAll(run, "<run>")))
        }))

      it.effect("a Statement.Transformer rewrites statements and streams before they run", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const seen: Array<string> = []
          const onlyAboveOne = Statement.withTransformer((self, sql) =>
            Effect.sync(() => {
              seen.push(self.compile()[0])
              return sql`SELECT * FROM (${self}) AS t WHERE t.n > ${1}`
            })
          )
          const rows = yield* onlyAboveOne(sql<{ n: number }>`SELECT generate_series(1, 3) AS n`)
          const streamed = yield* onlyAboveOne(
            Stream.runCollect(sql<{ n: number }>`SELECT generate_series(1, 4) AS n`.stream)
          )
          const value = { rows, streamed: Chunk.toReadonlyArray(streamed), seen }
          assert.deepStrictEqual(value, {
            rows: [{ n: 2 }, { n: 3 }],
            streamed: [{ n: 2 }, { n: 3 }, { n: 4 }],
            seen: ["SELECT generate_series(1, 3) AS n", "SELECT generate_series(1, 4) AS n"]
          })
          yield* record("Statement.Transformer", value)
        }))

      it.effect("reserve: statements of one connection for the scope, of every kind", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const value = yield* Effect.scoped(Effect.gen(function*() {
            const conn = yield* sql.reserve
            const [a] = yield* conn.execute("SELECT pg_backend_pid() AS pid", [], undefined)
            const [b] = yield* conn.executeUnprepared("SELECT pg_backend_pid() AS pid", [], undefined)
            const values = yield* conn.executeValues("SELECT $1::int AS n, 'x' AS s", [7])
            const raw = (yield* conn.executeRaw(`UPDATE ${`"compat_${run}_items"`} SET name = name WHERE id <= $1`, [
              2
            ])) as { rowCount: number; command: string }
            const streamed = yield* Stream.runCollect(
              conn.executeStream("SELECT generate_series(1, 3) AS n", [], undefined)
            )
            return {
              samePid: a.pid === b.pid,
              values,
              raw: { rowCount: raw.rowCount, command: raw.command },
              streamed: Chunk.toReadonlyArray(streamed)
            }
          }))
          assert.deepStrictEqual(value, {
            samePid: true,
            values: [[7, "x"]],
            raw: { rowCount: 2, command: "UPDATE" },
            streamed: [{ n: 1 }, { n: 2 }, { n: 3 }]
          })
          yield* record("reserve", value)
        }))

      it.effect("SqlResolver.grouped and SqlResolver.void batch concurrent requests", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const batches: Array<ReadonlyArray<unknown>> = []
          const byTag = yield* SqlResolver.grouped("CompatItemsByTag", {
            Request: Schema.String,
            RequestGroupKey: (tag) => tag,
            Result: Schema.Struct({ id: Schema.Number, tag: Schema.String }),
            ResultGroupKey: (row) => row.tag,
            execute: (tags) =>
              Effect.zipRight(
                Effect.sync(() => batches.push(["grouped", ...[...tags].sort()])),
                sql`SELECT id, tag FROM ${sql(names.items)}, unnest(tags) AS tag WHERE tag IN ${sql.in(tags)}
                ORDER BY id`
              )
          })
          const insert = yield* SqlResolver.void("CompatInsertVoid", {
            Request: Item,
            execute: (rows) =>
              Effect.zipRight(
                Effect.sync(() => batches.push(["void", ...rows.map((r) => r.id).sort()])),
                sql`INSERT INTO ${sql(names.writes)} ${sql.insert(rows)}`
              )
          })
          const grouped = yield* Effect.forEach(["prime", "even", "none"], (tag) => byTag.execute(tag), {
            concurrency: "unbounded",
            batching: true
          })
          yield* Effect.forEach([601, 602], (id) => insert.execute({ id, name: `v${id}` }), {
            concurrency: "unbounded",
            batching: true
          })
          const inserted = yield* sql<{ id: number }>`SELECT id FROM ${sql(names.writes)} WHERE id IN (601, 602)
          ORDER BY id`
          const value = { grouped: grouped.map((rows) => rows.map((r) => r.id)), inserted, batches }
          assert.deepStrictEqual(value, {
            grouped: [[2, 3, 5], [2, 4], []],
            inserted: [{ id: 601 }, { id: 602 }],
            batches: [["grouped", "even", "none", "prime"], ["void", 601, 602]]
          })
          yield* record("SqlResolver grouped/void", value)
        }))

      it.effect("SqlResolver inside withTransaction runs in that transaction", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const txidOf = yield* SqlResolver.findById("CompatTxid", {
            Id: Schema.Number,
            Result: Schema.Struct({ id: Schema.Number, txid: Schema.String }),
            ResultId: (row) => row.id,
            execute: (ids) => sql`SELECT id, txid_current()::text AS txid FROM unnest(${ids}::int[]) AS id`
          })
          const insert = yield* SqlResolver.void("CompatTxInsert", {
            Request: Item,
            execute: (rows) => sql`INSERT INTO ${sql(names.writes)} ${sql.insert(rows)}`
          })
          const outcome = yield* sql.withTransaction(Effect.gen(function*() {
            const [{ txid }] = yield* sql<{ txid: string }>`SELECT txid_current()::text AS txid`
            const resolved = yield* Effect.forEach([1, 2], (id) => txidOf.execute(id), { batching: true })
            yield* insert.execute({ id: 701, name: "in transaction" })
            return yield* Effect.fail({ same: resolved.every((row) => Option.getOrThrow(row).txid === txid) })
          })).pipe(Effect.flip)
          const after = yield* sql`SELECT id FROM ${sql(names.writes)} WHERE id = ${701}`
          const value = { outcome, after }
          assert.deepStrictEqual(value, { outcome: { same: true }, after: [] })
          yield* record("SqlResolver in transaction", value)
        }))

      it.effect("Model.makeRepository: insert, insertVoid, findById, update, updateVoid, delete", () =>
        Effect.gen(function*() {
          const repository = yield* Model.makeRepository(Person, {
            tableName: names.people,
            spanPrefix: "CompatPeople",
            idColumn: "id"
          })
          const ada = yield* repository.insert(Person.insert.make({ name: "Ada", age: 36 }))
          yield* repository.insertVoid(Person.insert.make({ name: "Alan", age: 41 }))
          const found = yield* repository.findById(ada.id)
          const updated = yield* repository.update(Person.update.make({ id: ada.id, name: "Ada L.", age: 37 }))
          yield* repository.updateVoid(Person.update.make({ id: ada.id + 1, name: "Alan T.", age: 42 }))
          const alan = yield* repository.findById(ada.id + 1)
          yield* repository.delete(ada.id)
          const gone = yield* repository.findById(ada.id)
          const value = {
            ada,
            found: Option.getOrNull(found),
            updated,
            alan: Option.getOrNull(alan),
            gone: Option.getOrNull(gone)
          }
          assert.deepStrictEqual(value.updated, Person.make({ id: ada.id, name: "Ada L.", age: 37 }))
          assert.deepStrictEqual(value.alan, Person.make({ id: ada.id + 1, name: "Alan T.", age: 42 }))
          assert.isNull(value.gone)
          yield* record("Model.makeRepository", value)
        }))

      // Wall clock: the data loaders batch within a time window.
      it.scoped("Model.makeDataLoaders: insert, findById and delete through its loaders", () =>
        TestServices.provideLive(Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const loaders = yield* Model.makeDataLoaders(Person, {
            tableName: names.people,
            spanPrefix: "CompatPeopleLoaders",
            idColumn: "id",
            window: "20 millis"
          })
          const inserted = yield* Effect.forEach(
            ["Grace", "Edsger", "Barbara"],
            (name, i) => loaders.insert(Person.insert.make({ name, age: 50 + i })),
            { concurrency: "unbounded" }
          )
          const found = yield* Effect.forEach(inserted, (person) => loaders.findById(person.id), {
            concurrency: "unbounded"
          })
          yield* loaders.delete(inserted[0]!.id)
          const [{ n }] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(names.people)}
          WHERE name IN ('Grace', 'Edsger', 'Barbara')`
          const value = {
            inserted: inserted.map((p) => ({ name: p.name, age: p.age })),
            found: found.map((p) => Option.getOrNull(p)?.name ?? null),
            left: n
          }
          assert.deepStrictEqual(value, {
            inserted: [{ name: "Grace", age: 50 }, { name: "Edsger", age: 51 }, { name: "Barbara", age: 52 }],
            found: ["Grace", "Edsger", "Barbara"],
            left: 2
          })
          yield* record("Model.makeDataLoaders", value)
        })))

      it.effect("PgMigrator runs migrations from records once, in order", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const gadgets = names.gadgets
          const options = {
            loader: Migrator.fromRecord({
              "2_seed_gadgets": Effect.flatMap(
                SqlClient.SqlClient,
                (sql) =>
                  sql`INSERT INTO ${sql(gadgets)} ${sql.insert([{ id: 1, name: "cog" }, { id: 2, name: "gear" }])}`
              ),
              "1_create_gadgets": Effect.flatMap(
                SqlClient.SqlClient,
                (sql) => sql`CREATE TABLE ${sql(gadgets)} (id integer PRIMARY KEY, name text NOT NULL)`
              )
            }),
            table: names.recordMigrations
          }
          const first = yield* PgMigrator.run(options).pipe(Effect.provide(NodeContext.layer))
          const again = yield* PgMigrator.run(options).pipe(Effect.provide(NodeContext.layer))
          const rows = yield* sql`SELECT id, name FROM ${sql(gadgets)} ORDER BY id`
          const value = { first, again, rows }
          assert.deepStrictEqual(value, {
            first: [[1, "create_gadgets"], [2, "seed_gadgets"]],
            again: [],
            rows: [{ id: 1, name: "cog" }, { id: 2, name: "gear" }]
          })
          yield* record("PgMigrator records", value)
        }))

      it.effect("reactive and reactiveMailbox re-run a query when its keys are invalidated", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const reactivity = yield* Reactivity.Reactivity
          const writes = sql(names.writes)
          const count = sql<{ n: number }>`SELECT count(*)::int AS n FROM ${writes} WHERE id BETWEEN 800 AND 899`
          // The first result is in before the mutation: an invalidation before the subscription is not seen.
          const first = yield* Deferred.make<void>()
          const streamed = yield* sql.reactive(["compat-writes"], count).pipe(
            Stream.tap(() => Deferred.succeed(first, undefined)),
            Stream.take(2),
            Stream.runCollect,
            Effect.fork
          )
          yield* Deferred.await(first)
          yield* reactivity.mutation(["compat-writes"], sql`INSERT INTO ${writes} (id, name) VALUES (801, 'r1')`)
          const fromStream = Chunk.toReadonlyArray(yield* Fiber.join(streamed))
          const fromMailbox = yield* Effect.scoped(Effect.gen(function*() {
            const mailbox = yield* sql.reactiveMailbox({ writes: [802] }, count)
            const before = yield* mailbox.take
            yield* reactivity.mutation({ writes: [802] }, sql`INSERT INTO ${writes} (id, name) VALUES (802, 'r2')`)
            const after = yield* mailbox.take
            return [before, after]
          }))
          const value = { fromStream, fromMailbox }
          assert.deepStrictEqual(value, {
            fromStream: [[{ n: 0 }], [{ n: 1 }]],
            fromMailbox: [[{ n: 1 }], [{ n: 2 }]]
          })
          yield* record("reactive", value)
        }))

      it.effect("streams: 1000 rows, early stop, and a stream inside a transaction", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const all = yield* Stream.runCollect(sql<{ n: number }>`SELECT generate_series(1, 1000) AS n`.stream)
          const ns = Chunk.toReadonlyArray(all).map((r) => r.n)
          const firstFive = yield* sql<{ n: number }>`SELECT generate_series(1, 100000) AS n`.stream.pipe(
            Stream.take(5),
            Stream.runCollect
          )
          const inTx = yield* sql.withTransaction(
            Effect.gen(function*() {
              yield* sql`INSERT INTO ${sql(names.ledger)} (note) VALUES ('stream:a'), ('stream:b')`
              const rows = yield* Stream.runCollect(
                sql<{ note: string }>`SELECT note FROM ${sql(names.ledger)} WHERE note LIKE 'stream:%' ORDER BY id`
                  .stream
              )
              const [{ n }] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(names.ledger)}`
              return { rows: Chunk.toReadonlyArray(rows).map((r) => r.note), ledgerNonEmpty: n > 0 }
            })
          )
          const after = yield* sql<{ ok: number }>`SELECT 1 AS ok`
          const value = {
            count: ns.length,
            sum: ns.reduce((a, b) => a + b, 0),
            ordered: ns.every((n, i) => n === i + 1),
            firstFive: Chunk.toReadonlyArray(firstFive).map((r) => r.n),
            inTx,
            after
          }
          assert.deepStrictEqual(value, {
            count: 1000,
            sum: 500500,
            ordered: true,
            firstFive: [1, 2, 3, 4, 5],
            inTx: { rows: ["stream:a", "stream:b"], ledgerNonEmpty: true },
            after: [{ ok: 1 }]
          })
          yield* record("streams", value)
        }))

      it.effect("PgMigrator runs a migrations folder once, in order", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const options = {
            loader: PgMigrator.fromFileSystem(Path.join(migrationsRoot, run)),
            table: names.migrations
          }
          // As an application does: the migrator as a layer…
          yield* Effect.provide(Effect.void, PgMigrator.layer(options).pipe(Layer.provide(NodeContext.layer)))
          const applied = yield* sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM ${
            sql(names.migrations)
          } ORDER BY migration_id`
          const widgets = yield* sql`SELECT id, name, size FROM ${sql(names.widgets)}`
          // …and a second run has nothing left to do.
          const again = yield* PgMigrator.run(options).pipe(Effect.provide(NodeContext.layer))
          const value = { applied, widgets, again }
          assert.deepStrictEqual(value, {
            applied: [{ migration_id: 1, name: "create_widgets" }, { migration_id: 2, name: "add_widget_size" }],
            widgets: [{ id: 1, name: "sprocket", size: 3 }],
            again: []
          })
          yield* record("PgMigrator", value)
        }))

      // Wall clock: the bounded retry below waits on an external system (the LISTEN becoming active).
      it.effect("listen delivers NOTIFY payloads in order once the LISTEN is active", () =>
        TestServices.provideLive(Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const pg = yield* PgClient.PgClient
          const channel = `compat_${run}_channel`
          // `pg_notify` rather than `pg.notify`: see the next case.
          const notify = (payload: string) => sql`SELECT pg_notify(${channel}, ${payload})`
          const payloads = yield* listenFor(pg.listen(channel), notify, [
            "first",
            "{\"json\": \"payload\"}",
            "third – ü"
          ])
          assert.deepStrictEqual(payloads, ["first", "{\"json\": \"payload\"}", "third – ü"])
          yield* record("listen/notify", payloads)
        })))

      // Not compared: `@effect/sql-pg` 0.53's `notify` sends `NOTIFY "<channel>", $1`, which the server
      // rejects (NOTIFY takes no parameters: 42601); ours sends `SELECT pg_notify($1, $2)`.
      it.effect(
        isReference
          ? "pg.notify fails with a syntax error under @effect/sql-pg 0.53 (NOTIFY with a bind parameter)"
          : "pg.notify delivers its payload",
        () =>
          TestServices.provideLive(Effect.gen(function*() {
            const pg = yield* PgClient.PgClient
            const channel = `compat_${run}_notify`
            if (isReference) {
              const error = yield* Effect.flip(pg.notify(channel, "x"))
              assert.strictEqual((error.cause as { code?: unknown }).code, "42601")
            } else {
              const payloads = yield* listenFor(pg.listen(channel), (p) => pg.notify(channel, p), ["a", "b"])
              assert.deepStrictEqual(payloads, ["a", "b"])
            }
          }))
      )
    }
  )
}

/** Name transforms, as many applications configure them: camelCase in code, snake_case in SQL. */
const transformsSuite = (run: string, title: string, clientLayer: Layer.Layer<Client, unknown>) => {
  const table = `compat_${run}_transformed`
  const Table = Layer.scopedDiscard(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const drop = sql`DROP TABLE IF EXISTS ${sql(table)}`
      yield* drop
      yield* sql`CREATE TABLE ${sql(table)} (item_id integer PRIMARY KEY, display_name text NOT NULL, extra_meta jsonb)`
      yield* Effect.addFinalizer(() => Effect.orDie(drop))
    }).pipe(Effect.orDie)
  )

  layer(Layer.provideMerge(Table, clientLayer), { timeout: "60 seconds" })(title, (it) => {
    it.effect("transformQueryNames / transformResultNames apply to inserts, rows, json and streams", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgClient.PgClient
        const inserted = yield* sql`INSERT INTO ${sql(table)} ${
          sql.insert([
            { itemId: 1, displayName: "One", extraMeta: pg.json({ nestedKey: { deepKey: 1 } }) },
            { itemId: 2, displayName: "Two", extraMeta: null }
          ])
        } RETURNING *`
        const selected = yield* sql`SELECT ${sql("itemId")}, ${sql("displayName")}, ${sql("extraMeta")} FROM ${
          sql(table)
        } ORDER BY ${sql("itemId")}`
        const streamed = Chunk.toReadonlyArray(
          yield* Stream.runCollect(sql`SELECT item_id, display_name FROM ${sql(table)} ORDER BY item_id`.stream)
        )
        const untransformed = yield* sql`SELECT item_id FROM ${sql(table)} ORDER BY item_id`.withoutTransform
        // A client without the transforms: names as written, in SQL and in rows; the rest of the client kept.
        const plain = sql.withoutTransforms()
        const plainRows = yield* plain`SELECT ${plain("item_id")} FROM ${plain(table)} ORDER BY item_id`
        const plainClient = {
          distinct: plain !== sql,
          safe: plain.safe === plain,
          again: plain.withoutTransforms() === plain,
          keepsPgClient: typeof (plain as PgClient.PgClient).json === "function",
          inTransaction: yield* plain.withTransaction(plain`SELECT count(*)::int AS n FROM ${plain(table)}`)
        }
        const value = { inserted, selected, streamed, untransformed, plainRows, plainClient }
        assert.deepStrictEqual(value.streamed, [{ itemId: 1, displayName: "One" }, { itemId: 2, displayName: "Two" }])
        assert.deepStrictEqual(value.untransformed, [{ item_id: 1 }, { item_id: 2 }])
        assert.deepStrictEqual(value.plainRows, [{ item_id: 1 }, { item_id: 2 }])
        assert.deepStrictEqual(value.plainClient, {
          distinct: true,
          safe: true,
          again: true,
          keepsPgClient: true,
          inTransaction: [{ n: 2 }]
        })
        yield* Effect.sync(() => {
          if (run === "pgclient") transformed.set("reference", value)
          else assert.deepStrictEqual(value, transformed.get("reference"), "differs from PgClient.layer")
        })
      }))
  })
}

const transformed = new Map<string, unknown>()
const transforms = {
  transformQueryNames: Str.camelToSnake,
  transformResultNames: Str.snakeToCamel
} as const

/**
 * One connection, so that every statement meets what earlier ones left on it: a statement the
 * pool has run (and prepared) before ALTER TABLE keeps working after it, every time.
 */
const schemaChangeSuite = (run: string, title: string, clientLayer: Layer.Layer<Client, unknown>) => {
  const table = `compat_${run}_schema_change`
  const Table = Layer.scopedDiscard(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const drop = sql`DROP TABLE IF EXISTS ${sql(table)}`
      yield* drop
      yield* sql`CREATE TABLE ${sql(table)} (id integer PRIMARY KEY, name text)`
      yield* sql`INSERT INTO ${sql(table)} VALUES (1, 'one')`
      yield* Effect.addFinalizer(() => Effect.orDie(drop))
    }).pipe(Effect.orDie)
  )

  layer(Layer.provideMerge(Table, clientLayer), { timeout: "60 seconds" })(title, (it) => {
    it.effect("SELECT * run before ALTER TABLE ADD COLUMN works after it, every time", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const select = sql`SELECT * FROM ${sql(table)} WHERE id = ${1}`
        const before = yield* select
        yield* sql`ALTER TABLE ${sql(table)} ADD COLUMN extra integer`
        const after = yield* Effect.all([select, select, select].map(Effect.either))
        assert.deepStrictEqual(before, [{ id: 1, name: "one" }])
        assert.deepStrictEqual(
          after.map((result) => result._tag === "Right" ? result.right : (result.left.cause as { code?: string }).code),
          [[{ id: 1, name: "one", extra: null }], [{ id: 1, name: "one", extra: null }], [{
            id: 1,
            name: "one",
            extra: null
          }]]
        )
      }))
  })
}

describe("compat", () => {
  compatSuite(
    "pgclient",
    "compat: @effect/sql-pg PgClient.layer",
    PgClient.layer({ url: Redacted.make(url), applicationName }),
    "reference"
  )

  compatSuite(
    "pgpool",
    "compat: @scoped-pool/pg PgPoolLive",
    Layer.provide(
      PgPoolLive,
      Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", url], ["PGAPPNAME", applicationName]])))
    ),
    "candidate"
  )

  transformsSuite(
    "pgclient",
    "compat: name transforms, PgClient.layer",
    PgClient.layer({ url: Redacted.make(url), applicationName, ...transforms })
  )
  transformsSuite(
    "pgpool",
    "compat: name transforms, PgPool.layer",
    PgPool.layer({ url: Redacted.make(url), applicationName, ...transforms })
  )

  schemaChangeSuite(
    "pgclient",
    "compat: schema change on one connection, PgClient.layer",
    PgClient.layer({ url: Redacted.make(url), applicationName, maxConnections: 1 })
  )
  schemaChangeSuite(
    "pgpool",
    "compat: schema change on one connection, PgPool.layer",
    PgPool.layer({ url: Redacted.make(url), applicationName, max: 1 })
  )

  describe("compat: both layers", () => {
    it.effect("every case gave deep-equal results under PgClient.layer and PgPoolLive", () =>
      Effect.sync(() => {
        assert.deepStrictEqual([...observed.keys()], [...reference.keys()])
        assert.strictEqual(reference.size, 24)
        for (const [name, value] of reference) assert.deepStrictEqual(observed.get(name), value, name)
        assert.isTrue(transformed.has("reference"))
      }))
  })
})
