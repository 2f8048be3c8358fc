/**
 * The encoders and decoders of `PgCopy` (issue 17 line 4), held to PostgreSQL's own parser and
 * printer: random rows — NULL, the empty string, quotes, commas, newlines, carriage returns,
 * tabs, backslashes, `\.` and `\N` as text, any Unicode — are loaded with `copyFrom` and read
 * back with a plain SELECT (the server parsed what we wrote), then exported with `copyTo` and
 * decoded (we parsed what the server wrote); both must give the rows back unchanged, in the text
 * format and in CSV. The decoders also take data split at any byte, and the Schema transforms
 * round-trip typed rows. 100 row sets a format in CI; more with
 * `COPY_PROP_RUNS=2000 pnpm vitest run test/copy/formats.test.ts` (2,000 passed, 44 s, when written).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { PgCopy, PgPool } from "@scoped-pool/pg"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { withClient } from "../support/backends.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const Pool = PgPool.layer({ url: Redacted.make(url), applicationName, max: 1 })

const admin = (sql: string) => Effect.promise(() => withClient(url, (client) => client.query(sql)))

const tricky = [
  "",
  "\\.",
  "\\N",
  "\\",
  "\\\\",
  "\"",
  "\"\"",
  ",",
  "a,b",
  "\n",
  "\r",
  "\r\n",
  "\t",
  "NULL",
  " padded ",
  "é",
  "日本語",
  "🎉",
  "\\x41",
  "\\101"
]

/** A field: NULL, a tricky string, or any string of valid code points (NUL excluded: text cannot hold it). */
const field: FastCheck.Arbitrary<string | null> = FastCheck.oneof(
  FastCheck.constant(null),
  FastCheck.constantFrom(...tricky),
  FastCheck.fullUnicodeString({ maxLength: 12 }).map((s) => s.replace(/\0/g, "")),
  FastCheck.array(FastCheck.constantFrom(...tricky, "x", " "), { maxLength: 6 }).map((parts) => parts.join(""))
)
const rows = FastCheck.array(FastCheck.tuple(field, field), { minLength: 1, maxLength: 20 })

const decodeAll = (format: PgCopy.Format, chunks: ReadonlyArray<Uint8Array>) =>
  Effect.map(Stream.runCollect(PgCopy.decodeRows(format)(Stream.fromIterable(chunks))), Chunk.toArray)

const bytesOf = (format: PgCopy.Format, input: ReadonlyArray<ReadonlyArray<unknown>>) =>
  Effect.map(
    Stream.runCollect(PgCopy.encodeRows(format)(Stream.fromIterable(input))),
    (chunks) => Buffer.concat([...chunks])
  )

describe("4. encoders and decoders, without a server", () => {
  it.effect("4. text: NULL is \\N; backslash, newline, carriage return and tab are escaped", () =>
    Effect.gen(function*() {
      const bytes = yield* bytesOf(PgCopy.text, [["a\\b", null, "", "x\ny\rz\tw", "\\N"]])
      assert.strictEqual(bytes.toString(), "a\\\\b\t\\N\t\tx\\ny\\rz\\tw\t\\\\N\n")
    }))

  it.effect("4. CSV: NULL is an unquoted empty field; the empty string, quotes, commas, line ends and \\. are quoted", () =>
    Effect.gen(function*() {
      const bytes = yield* bytesOf(PgCopy.csv, [[null, "", "a\"b", "a,b", "l\nr", "\\.", "plain"]])
      assert.strictEqual(bytes.toString(), ",\"\",\"a\"\"b\",\"a,b\",\"l\nr\",\"\\.\",plain\n")
    }))

  it.effect("4. values other than strings are written as statement parameters are; bytes as bytea hex", () =>
    Effect.gen(function*() {
      const bytes = yield* bytesOf(PgCopy.text, [[1, 2n, true, new Uint8Array([1, 255]), [1, null, "a b"], { k: "v" }]])
      assert.strictEqual(bytes.toString(), "1\t2\ttrue\t\\\\x01ff\t{\"1\",NULL,\"a b\"}\t{\"k\":\"v\"}\n")
    }))

  it.effect("4. the text decoder reads PostgreSQL's escapes: \\b \\f \\v, octal, hex", () =>
    Effect.gen(function*() {
      const decoded = yield* decodeAll(PgCopy.text, [Buffer.from("\\b\\f\\v\t\\101\\x42\\\\\t\\N\n")])
      assert.deepStrictEqual(decoded, [["\b\f\v", "AB\\", null]])
    }))

  it.effect("4. a CSV that ends inside a quoted field fails typed, with its line", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeAll(PgCopy.csv, [Buffer.from("a,b\n\"open,c\n")]))
      assert.instanceOf(error, PgCopy.CopyDecodeError)
      assert.strictEqual(error.line, 2)
    }))

  it.prop(
    "4. the decoders take the data split at any byte (multi-byte characters and quoted line ends included)",
    [rows, FastCheck.array(FastCheck.nat(), { maxLength: 8 })],
    ([input, cuts]) => {
      for (const format of [PgCopy.text, PgCopy.csv]) {
        const bytes = Buffer.from(format.encode(input))
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
        const chunks: Array<Uint8Array> = []
        let from = 0
        for (const cut of at) {
          chunks.push(bytes.subarray(from, cut))
          from = cut
        }
        chunks.push(bytes.subarray(from))
        const decoded = Effect.runSync(decodeAll(format, chunks))
        assert.deepStrictEqual(decoded, input.map((row) => [...row]))
      }
    },
    { fastCheck: { numRuns: 300 } }
  )
})

const runs = Number(process.env.COPY_PROP_RUNS ?? 100)

describe(`4. every value round-trips through PostgreSQL's own parser and printer (${runs} random row sets a format)`, () => {
  layer(Pool, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    for (const format of [PgCopy.text, PgCopy.csv]) {
      const t = `copy_prop_${format._tag.toLowerCase()}`
      it.effect.prop(
        `4. ${format._tag}: loaded by copyFrom, read back by SELECT; exported by copyTo, decoded`,
        [rows],
        ([input]) =>
          Effect.gen(function*() {
            const pg = yield* PgPool.PgPool
            const sql = pg.sql
            yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${t} (id int, x text, y text); TRUNCATE ${t}`)
            const numbered = input.map(([x, y], i) => [i, x, y] as const)
            const loaded = yield* Stream.fromIterable(numbered).pipe(
              PgCopy.encodeRows(format),
              Stream.run(pg.copyFrom(`COPY ${t} (id, x, y) FROM STDIN ${format.option}`))
            )
            assert.strictEqual(loaded, input.length)
            // the server's parser read what the encoder wrote
            const stored = yield* sql<{ x: string | null; y: string | null }>`SELECT x, y FROM ${sql(t)} ORDER BY id`
            assert.deepStrictEqual(stored.map((r) => [r.x, r.y]), input.map((row) => [...row]))
            // the decoder reads what the server's printer wrote
            const exported = yield* pg.copyTo(`COPY (SELECT x, y FROM ${t} ORDER BY id) TO STDOUT ${format.option}`)
              .pipe(
                PgCopy.decodeRows(format),
                Stream.runCollect
              )
            assert.deepStrictEqual(Chunk.toArray(exported), input.map((row) => [...row]))
          }),
        { fastCheck: { numRuns: runs } }
      )
    }

    it.effect("4. drop the property tables", () =>
      Effect.asVoid(admin("DROP TABLE IF EXISTS copy_prop_text, copy_prop_csv")))
  })
})

const Item = Schema.Struct({
  id: Schema.NumberFromString,
  name: Schema.NullOr(Schema.String),
  price: Schema.NumberFromString,
  tags: Schema.String
})

describe("4. a typed row encoder and decoder from an Effect Schema", () => {
  layer(Pool, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("4. typed rows through encodeSchema and copyFrom, back through copyTo and decodeSchema, in both formats", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        yield* admin(
          "DROP TABLE IF EXISTS copy_schema; CREATE TABLE copy_schema (id int, name text, price numeric, tags text)"
        )
        yield* Effect.addFinalizer(() => Effect.orDie(admin("DROP TABLE IF EXISTS copy_schema")))
        const items = [
          { id: 1, name: "plain", price: 1.5, tags: "a" },
          { id: 2, name: null, price: 0, tags: "" },
          { id: 3, name: "tab\there, \"quoted\", new\nline \\ é🎉", price: -2.25, tags: "\\." }
        ]
        for (const format of [PgCopy.text, PgCopy.csv]) {
          yield* admin("TRUNCATE copy_schema")
          const loaded = yield* Stream.fromIterable(items).pipe(
            PgCopy.encodeSchema(Item, { format }),
            Stream.run(pg.copyFrom(`COPY copy_schema (id, name, price, tags) FROM STDIN ${format.option}`))
          )
          assert.strictEqual(loaded, 3)
          const back = yield* pg.copyTo(`COPY (SELECT * FROM copy_schema ORDER BY id) TO STDOUT ${format.option}`).pipe(
            PgCopy.decodeSchema(Item, { format }),
            Stream.runCollect
          )
          assert.deepStrictEqual(Chunk.toArray(back), items)
        }
      }))

    it.scoped("4. columns given explicitly pick and order the fields; a row the schema rejects fails with its ParseError, nothing loaded", () =>
      Effect.gen(function*() {
        const pg = yield* PgPool.PgPool
        yield* admin("DROP TABLE IF EXISTS copy_schema2; CREATE TABLE copy_schema2 (b text, a int)")
        yield* Effect.addFinalizer(() => Effect.orDie(admin("DROP TABLE IF EXISTS copy_schema2")))
        const Row = Schema.Struct({ a: Schema.Int, b: Schema.String })
        const loaded = yield* Stream.make({ a: 1, b: "one" }, { a: 2, b: "two" }).pipe(
          PgCopy.encodeSchema(Row, { columns: ["b", "a"] }),
          Stream.run(pg.copyFrom("COPY copy_schema2 (b, a) FROM STDIN"))
        )
        assert.strictEqual(loaded, 2)
        const error = yield* Effect.flip(
          Stream.make({ a: 3, b: "three" }, { a: 4.5, b: "not an int" }).pipe(
            PgCopy.encodeSchema(Row, { columns: ["b", "a"] }),
            Stream.run(pg.copyFrom("COPY copy_schema2 (b, a) FROM STDIN"))
          )
        )
        assert.isTrue(ParseResult.isParseError(error))
        const count = yield* admin("SELECT count(*)::int AS n FROM copy_schema2")
        assert.strictEqual((count.rows[0] as { n: number }).n, 2)
      }))
  })
})
