/**
 * Binary result formats give the values `pg` gives (issue 12 line 1: results stay identical to
 * `@effect/sql-pg` 0.53's). A statement's first run on a connection is read in text (through
 * `pg-types`, exactly as `pg`); from its second run, the columns whose types have a binary
 * decoder are asked for in binary. Each test runs the same statement twice on one connection
 * and compares the runs deep-equal, after checking that the second one did ask for binary —
 * for edge values (epochs, microsecond rounding, BC, years 0–99, infinity, past 2285 where the
 * 64-bit microseconds leave a double's exact range, past JavaScript's Date range), under
 * several session time zones and process time zones, and for random values (fast-check).
 * Then what must keep a column in text: a `types` override, a non-ISO DateStyle; and what a
 * concurrent schema change does to a statement whose formats were chosen from its last run.
 */
import { assert, describe, it } from "@effect/vitest"
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import type * as PgConnectionT from "@scoped-pool/pg/PgConnection"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import type * as Scope from "effect/Scope"
import type { WireConnection } from "../../packages/pg/src/internal/wire/connection.js"
import { defaultTypes as pgTypes } from "../../packages/pg/src/internal/wire/values.js"
import { optionsFromUrl } from "../pg/options.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const connect = (
  overrides: Partial<PgConnectionT.PgConnectionOptions> = {}
): Effect.Effect<PgConnectionT.PgConnection, unknown, Scope.Scope> =>
  PgConnection.make(optionsFromUrl(url, applicationName, overrides))

const wireOf = (conn: PgConnectionT.PgConnection): WireConnection =>
  (conn as unknown as { readonly wire: WireConnection }).wire

/** Values that deep-equal can compare: a Date by its time (an Invalid Date as "NaN"), a Buffer by its hex. */
const comparable = (value: unknown): unknown =>
  value instanceof Date
    ? `Date(${String(value.getTime())})`
    : Buffer.isBuffer(value)
    ? `Buffer(${value.toString("hex")})`
    : value

const rowsOf = (result: PgConnectionT.QueryResult) =>
  result.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, comparable(v)])))

/**
 * Runs `sql` twice on `conn`: the first run is text, the second asks for binary in the columns
 * `binary` names (by position); returns both runs' rows.
 */
const twice = (conn: PgConnectionT.PgConnection, sql: string, params: ReadonlyArray<unknown>, binary: number) =>
  Effect.gen(function*() {
    const text = yield* conn.query(sql, params)
    const formats = wireOf(conn).resultFormats(sql)
    assert.deepStrictEqual(formats?.filter((f) => f === 1).length ?? 0, binary, `binary columns of ${sql}`)
    const second = yield* conn.query(sql, params)
    return { text: rowsOf(text), binary: rowsOf(second) }
  })

const listOf = (type: string) =>
  `SELECT v::${type} AS v, v AS literal FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i) ORDER BY i`

const timestamps = [
  "2000-01-01 00:00:00",
  "1970-01-01 00:00:00",
  "1969-12-31 23:59:59.9995",
  "1969-12-31 23:59:59.999999",
  "1969-12-31 23:59:59.000001",
  "2026-12-01 10:41:03.017123",
  "2026-12-01 10:41:03.029",
  "2026-12-01 10:41:03.999999",
  "1900-01-01 00:00:00",
  "1900-01-01 12:34:56.789",
  "2024-03-31 02:30:00",
  "2024-10-27 02:30:00",
  "0001-01-01 00:00:00",
  "0001-01-01 00:00:00 BC",
  "0050-06-15 12:00:00.5",
  "0099-12-31 23:59:59.999",
  "0100-01-01 00:00:00",
  "4713-01-01 00:00:00 BC",
  "2285-06-01 00:00:00.000001",
  "2300-06-01 00:00:00.123456",
  "1700-02-28 23:59:59.999999",
  "99999-12-31 23:59:59.999999",
  "275760-09-13 00:00:00",
  "294276-12-30 23:59:59.999999",
  "infinity",
  "-infinity"
]

const dates = [
  "2000-01-01",
  "1970-01-01",
  "1969-12-31",
  "2024-02-29",
  "2024-03-31",
  "1900-01-01",
  "0001-01-01",
  "0001-01-01 BC",
  "0050-03-01",
  "0099-12-31",
  "4713-01-01 BC",
  "275760-09-13",
  "5874897-12-31",
  "infinity",
  "-infinity"
]

const sessionZones = ["UTC", "Europe/Amsterdam", "Asia/Kathmandu", "America/St_Johns", "Pacific/Kiritimati"]

describe("binary results give pg's values", () => {
  it.scoped("timestamptz, timestamp and date, under session time zones with odd offsets (LMT, +05:45, -03:30, +14)", () =>
    Effect.gen(function*() {
      for (const zone of sessionZones) {
        const conn = yield* connect({ startupParameters: { TimeZone: zone } })
        for (
          const [type, values] of [["timestamptz", timestamps], ["timestamp", timestamps], ["date", dates]] as const
        ) {
          const runs = yield* twice(conn, listOf(type), [values], 1)
          assert.deepStrictEqual(runs.binary, runs.text, `${type} under TimeZone ${zone}`)
          assert.strictEqual(runs.text.length, values.length)
        }
      }
    }))

  it.scoped("local time (timestamp, date) under process time zones with DST and odd offsets", () =>
    Effect.gen(function*() {
      const before = process.env.TZ
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (before === undefined) delete process.env.TZ
          else process.env.TZ = before
        })
      )
      for (const zone of ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/Dublin"]) {
        process.env.TZ = zone
        const conn = yield* connect()
        for (
          const [type, values] of [["timestamp", timestamps], ["date", dates], ["timestamptz", timestamps]] as const
        ) {
          const runs = yield* twice(conn, listOf(type), [values], 1)
          assert.deepStrictEqual(runs.binary, runs.text, `${type} with TZ=${zone}`)
        }
      }
    }))

  it.scoped("integers, oid, bool and bytea at their extremes; text, numeric, float and uuid stay text", () =>
    Effect.gen(function*() {
      const conn = yield* connect()
      const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>, number]> = [
        ["int2", ["0", "1", "-1", "32767", "-32768", "255", "-256", "256"], 1],
        ["int4", ["0", "1", "-1", "2147483647", "-2147483648", "65536", "-65537"], 1],
        ["int8", [
          "0",
          "1",
          "-1",
          "9223372036854775807",
          "-9223372036854775808",
          "4503599627370495",
          "4503599627370496",
          "-4503599627370496",
          "-4503599627370497",
          "9007199254740993",
          "4294967296",
          "-4294967296"
        ], 1],
        ["oid", ["0", "1", "4294967295", "2147483648"], 1],
        ["bool", ["t", "f", "true", "false"], 1],
        ["bytea", ["\\x", "\\x00", "\\x00ff7f80", "\\x" + "ab".repeat(5000)], 1],
        ["text", ["", "é", "a longer text value"], 0],
        ["numeric", ["1.50", "NaN", "-0.000001", "123456789012345678901234567890"], 0],
        ["float8", ["0.1", "1e300", "-0", "NaN", "Infinity"], 0],
        ["uuid", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], 0]
      ]
      for (const [type, values, binary] of cases) {
        const runs = yield* twice(conn, listOf(type), [values], binary)
        assert.deepStrictEqual(runs.binary, runs.text, type)
      }
    }))

  it.scoped("NULLs, several columns, arrays mode, a prepared statement and a simple query without parameters", () =>
    Effect.gen(function*() {
      const conn = yield* connect()
      const sql = "SELECT 1::int4 AS a, NULL::timestamptz AS b, now() AS c, 'x' AS d, 2::int8 AS e"
      // No parameters: the first run is a simple query; the timestamps make it extended with binary next.
      const [first] = yield* conn.queryRaw(sql, [])
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [1, 1, 1, 0, 1])
      const [second] = yield* conn.queryRaw(sql, [])
      assert.deepStrictEqual(rowsOf(second!).map((r) => Object.keys(r)), [["a", "b", "c", "d", "e"]])
      assert.strictEqual(second!.rows[0]!.b, null)
      assert.strictEqual(second!.rows[0]!.e, "2")
      assert.instanceOf(second!.rows[0]!.c, Date)
      assert.deepStrictEqual(second!.fields.map((f) => f.format), ["text", "text", "text", "text", "text"])
      assert.deepStrictEqual(first!.fields, second!.fields)
      // rows as arrays
      const arrays = yield* conn.query(sql, [], { rowMode: "array" })
      assert.strictEqual(arrays.rows[0]![0], 1)
      // prepared: the Describe picks the formats, the next Binds ask for them
      const prepared = "SELECT $1::timestamptz AS t, $2::int4 AS n"
      const p1 = yield* conn.query(prepared, ["2026-12-01 10:41:03.017123+00", 7], { prepare: true })
      assert.deepStrictEqual(wireOf(conn).resultFormats(prepared), [1, 1])
      const p2 = yield* conn.query(prepared, ["2026-12-01 10:41:03.017123+00", 7], { prepare: true })
      assert.deepStrictEqual(rowsOf(p2), rowsOf(p1))
      // a simple query that is several statements stays simple (and text)
      const multi = "SELECT now() AS a; SELECT 2 AS b"
      yield* conn.queryRaw(multi, [])
      assert.isUndefined(wireOf(conn).resultFormats(multi))
    }))

  it.scoped("random timestamps and dates over the whole range (fast-check): binary = text", () =>
    Effect.gen(function*() {
      const conn = yield* connect({ startupParameters: { TimeZone: "America/Sao_Paulo" } })
      const pad = (n: number, w: number) => String(n).padStart(w, "0")
      const literal = FastCheck.record({
        year: FastCheck.integer({ min: 1, max: 294275 }),
        bc: FastCheck.boolean(),
        month: FastCheck.integer({ min: 1, max: 12 }),
        day: FastCheck.integer({ min: 1, max: 28 }),
        seconds: FastCheck.integer({ min: 0, max: 86399 }),
        micros: FastCheck.integer({ min: 0, max: 999999 })
      }).map(({ bc, day, micros, month, seconds, year }) => {
        const y = bc ? Math.min(year, 4713) : year
        const time = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${
          pad(seconds % 60, 2)
        }.${pad(micros, 6)}`
        return { timestamp: `${pad(y, 4)}-${pad(month, 2)}-${pad(day, 2)} ${time}${bc ? " BC" : ""}` }
      })
      const runs = FastCheck.sample(FastCheck.array(literal, { minLength: 50, maxLength: 50 }), 60)
      for (const batch of runs) {
        const values = batch.map((v) => v.timestamp)
        for (const type of ["timestamptz", "timestamp", "date"]) {
          const sql = `${listOf(type)} /* ${values[0]} */`
          const result = yield* twice(conn, sql, [values], 1)
          assert.deepStrictEqual(result.binary, result.text, `${type}: ${values.join(", ")}`)
        }
      }
    }))
})

describe("what keeps a column in text", () => {
  it.scoped("a types override of a type: that column stays text and gets the override's value", () =>
    Effect.gen(function*() {
      const types = {
        getTypeParser: (oid: number, format?: string) =>
          oid === 1184 ? (text: string) => `custom:${text}` : pgTypes.getTypeParser(oid, format)
      }
      const conn = yield* connect({ types })
      const sql = "SELECT $1::timestamptz AS t, $2::int4 AS n, $3::date AS d"
      const params = ["2026-12-01 10:41:03+00", 5, "2026-12-01"]
      yield* conn.query(sql, params)
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [0, 1, 1])
      const second = yield* conn.query(sql, params)
      assert.strictEqual(second.rows[0]!.t, "custom:2026-12-01 10:41:03+00")
      assert.strictEqual(second.rows[0]!.n, 5)
    }))

  it.scoped("a DateStyle that is not ISO: date and time columns go back to text (pg's own reading of them)", () =>
    Effect.gen(function*() {
      const conn = yield* connect()
      const sql = "SELECT $1::timestamptz AS t, $2::int4 AS n"
      const params = ["2026-12-01 10:41:03+00", 5]
      yield* conn.query(sql, params)
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [1, 1])
      yield* conn.query("SET DateStyle = 'SQL, DMY'", [])
      const text = yield* conn.query(sql, params)
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [0, 1])
      const again = yield* conn.query(sql, params)
      assert.deepStrictEqual(rowsOf(again), rowsOf(text))
      yield* conn.query("SET DateStyle = 'ISO, MDY'", [])
      yield* conn.query(sql, params)
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [1, 1])
    }))
})

describe("a schema change between two runs of an unnamed statement", () => {
  it.scoped("a column whose type changes to another binary type reads right; to a type with no binary decoder, the run fails typed once, then text", () =>
    Effect.gen(function*() {
      const conn = yield* connect()
      const ddl = yield* connect()
      const table = `binres_${process.pid}`
      yield* ddl.query(`CREATE TABLE ${table} (c int4)`, [])
      yield* Effect.addFinalizer(() => Effect.ignore(ddl.query(`DROP TABLE IF EXISTS ${table}`, [])))
      yield* ddl.query(`INSERT INTO ${table} VALUES (7)`, [])
      const sql = `SELECT c FROM ${table} WHERE c IS NOT NULL OR $1::int4 = 0`
      yield* conn.query(sql, [1])
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [1])
      yield* ddl.query(`ALTER TABLE ${table} ALTER c TYPE int8`, [])
      const asInt8 = yield* conn.query(sql, [1])
      assert.deepStrictEqual(asInt8.rows, [{ c: "7" }])
      yield* ddl.query(`ALTER TABLE ${table} ALTER c TYPE point USING point(c, c)`, [])
      const failed = yield* Effect.flip(conn.query(sql, [1]))
      assert.strictEqual(failed._tag, "PgQueryError")
      assert.match(failed.message, /came in binary as type 600, which has no binary decoder/)
      const asPoint = yield* conn.query(sql, [1])
      assert.deepStrictEqual(asPoint.rows, [{ c: { x: 7, y: 7 } }])
      assert.isTrue(wireOf(conn).usable)
    }))

  it.scoped("a column added under SELECT *: the Bind that asked one format per column fails, nothing ran, the statement is re-run; inside a transaction text is asked", () =>
    Effect.gen(function*() {
      const conn = yield* connect()
      const ddl = yield* connect()
      const table = `binres_star_${process.pid}`
      yield* ddl.query(`CREATE TABLE ${table} (a int4, t timestamptz)`, [])
      yield* Effect.addFinalizer(() => Effect.ignore(ddl.query(`DROP TABLE IF EXISTS ${table}`, [])))
      yield* ddl.query(`INSERT INTO ${table} VALUES (1, '2026-12-01 00:00:00+00')`, [])
      const sql = `SELECT * FROM ${table} WHERE a = $1`
      yield* conn.query(sql, [1])
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [1, 1])
      yield* ddl.query(`ALTER TABLE ${table} ADD COLUMN b text DEFAULT 'x'`, [])
      const rerun = yield* conn.query(sql, [1])
      assert.deepStrictEqual(Object.keys(rerun.rows[0]!), ["a", "t", "b"])
      assert.strictEqual(rerun.rows[0]!.b, "x")
      yield* conn.query(sql, [1])
      assert.deepStrictEqual(wireOf(conn).resultFormats(sql), [1, 1, 0])
      // In a transaction block the formats are not asked for: a change fails nothing there.
      yield* ddl.query(`ALTER TABLE ${table} ADD COLUMN c int4 DEFAULT 3`, [])
      yield* conn.query("BEGIN", [])
      const inTx = yield* conn.query(sql, [1])
      assert.deepStrictEqual(Object.keys(inTx.rows[0]!), ["a", "t", "b", "c"])
      assert.strictEqual(conn.transactionStatus, "transaction")
      yield* conn.query("COMMIT", [])
    }))
})
