/**
 * Bulk load and export with PostgreSQL's COPY, as Effect streams: `copyFrom` is a `Sink` of
 * bytes that completes with the number of rows loaded, `copyTo` a `Stream` of byte chunks. They
 * are on `PgPool`'s service and on the `SqlClient`/`PgClient` our layers provide (the accessors
 * here reach them from the context). This module also has the stream transforms between rows
 * and those bytes: the text and CSV formats, and typed rows through an Effect `Schema`.
 *
 * **Details**
 *
 * - Inside `withTransaction` a copy runs on the transaction's connection (and, like a stream,
 *   holds it: another statement of the transaction fails at once until the copy ends); outside,
 *   on a lease of its own, held for the copy's scope. A COPY never shares its connection: none
 *   is pipelined with it.
 * - Backpressure both ways: the sink waits for the socket to drain; the stream stops reading the
 *   socket while `highWaterMark` bytes wait for a slow consumer.
 * - `copyTo` batches its reads (`readBatch`, default 1 ms): the server's rows are read a few
 *   64 KiB reads at a time instead of each of its sends waking the client.
 * - A statement that is not a COPY fails with `PgCopyError` (`NotCopy`) before any connection
 *   is taken.
 * - Interrupting a `copyFrom`, or its source failing, sends CopyFail: nothing is loaded, and the
 *   caller resumes once the server has answered (within `cancelTimeout`, else the connection is
 *   destroyed). Interrupting a `copyTo` cancels the COPY on the server. A row the server rejects
 *   fails the copy with a `PgCopyError` that has its `line`.
 * - A COPY is bounded by the server's `statement_timeout`, which `PgPool` sets a little above its
 *   `queryTimeout`: raise `queryTimeout` for loads that take longer. The client's `queryTimeout`
 *   itself does not apply, as the copy's pace is its source's or consumer's.
 *
 * **Example** (Load rows, then read them back)
 *
 * ```ts
 * import * as Effect from "effect/Effect"
 * import * as Schema from "effect/Schema"
 * import * as Stream from "effect/Stream"
 * import { PgCopy, PgPool } from "@scoped-pool/pg"
 *
 * const Item = Schema.Struct({ id: Schema.NumberFromString, name: Schema.String })
 *
 * const program = Effect.gen(function*() {
 *   const pg = yield* PgPool.PgPool
 *   const loaded = yield* Stream.make({ id: 1, name: "a" }, { id: 2, name: "b\tc" }).pipe(
 *     PgCopy.encodeSchema(Item),
 *     Stream.run(pg.copyFrom("COPY item (id, name) FROM STDIN"))
 *   )
 *   const items = yield* pg.copyTo("COPY item (id, name) TO STDOUT").pipe(
 *     PgCopy.decodeSchema(Item),
 *     Stream.runCollect
 *   )
 *   return { loaded, items }
 * })
 * ```
 *
 * @since 0.3.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { PoolError } from "@scoped-pool/core/PoolError"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { ParseError } from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as Codec from "./internal/copyFormat.js"
import type { PgConnectError, PgConnectionLost, PgCopyError } from "./PgError.js"

/**
 * What a copy on `PgPool` can fail with: the COPY itself (`PgCopyError`, with the line of a
 * rejected row), the connection lost during it, no lease (`PgConnectError`, `PoolError`), or,
 * inside `withTransaction`, no turn on the transaction's connection (`SqlError`).
 *
 * @since 0.3.0
 * @category errors
 */
export type CopyError = PgCopyError | PgConnectionLost | PgConnectError | PoolError | SqlError

/**
 * Options of `copyTo`.
 *
 * @since 0.3.0
 * @category models
 */
export interface CopyToOptions {
  /**
   * Bytes read and not yet consumed past which reading from the server pauses, until the
   * consumer catches up: memory stays bounded whatever the export's size. Default: 1 MiB.
   */
  readonly highWaterMark?: number | undefined
  /**
   * After a read that found no more of the export waiting, how long reading waits before the
   * next, so that the server's rows gather and are read a few at once rather than each send
   * waking the client (when both run on one host, the server pays for those wake-ups: a few
   * percent of its CPU). Rows already read are delivered at once; an export's end is seen at
   * most this much later. Applies on plain TCP and Unix sockets (not TLS, not a custom
   * stream), and stops for a copy whose server outpaces it. `0` reads as soon as data comes.
   * Default: 1 millisecond.
   */
  readonly readBatch?: Duration.DurationInput | undefined
}

/**
 * The two COPY operations, failing with `E`: `CopyError` on `PgPool`'s service, `SqlError` on
 * the `SqlClient`/`PgClient` our layers provide.
 *
 * @since 0.3.0
 * @category models
 */
export interface Copy<E> {
  /**
   * Runs `sql`, a `COPY … FROM STDIN`, with the sink's input as its data (bytes of the COPY's
   * format: see `encodeRows`, `encodeSchema`); completes with the number of rows loaded (the
   * server's CommandComplete). The COPY is sent when the sink starts; the data is gathered into
   * writes of about 64 KiB (large chunks are written as they are, so do not change a chunk once
   * emitted).
   */
  readonly copyFrom: (sql: string) => Sink.Sink<number, Uint8Array, never, E>
  /**
   * Runs `sql`, a `COPY … TO STDOUT`, and streams its output: each chunk holds whole rows (the
   * server sends one row per message; a chunk joins those read together). The COPY is sent
   * when the stream starts.
   */
  readonly copyTo: (sql: string, options?: CopyToOptions) => Stream.Stream<Uint8Array, E>
}

const isCopy = (u: unknown): u is Copy<SqlError> =>
  Predicate.hasProperty(u, "copyFrom") && Predicate.hasProperty(u, "copyTo") &&
  typeof u.copyFrom === "function" && typeof u.copyTo === "function"

const clientCopy: Effect.Effect<Copy<SqlError>, never, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (client) =>
    isCopy(client)
      ? Effect.succeed(client)
      : Effect.dieMessage(
        "PgCopy: the SqlClient in context has no COPY; provide it with @scoped-pool/pg's PgPool.layer (or PgPoolLive)"
      )
)

/**
 * `copyFrom` of the `SqlClient` in the context (one of our layers'), failing with `SqlError`
 * whose `cause` is the `PgCopyError`.
 *
 * **Example** (CSV rows into a table)
 *
 * ```ts
 * import * as Stream from "effect/Stream"
 * import { PgCopy } from "@scoped-pool/pg"
 *
 * const load = Stream.make([1, "a"], [2, null]).pipe(
 *   PgCopy.encodeRows(PgCopy.csv),
 *   Stream.run(PgCopy.copyFrom("COPY item (id, name) FROM STDIN (FORMAT csv)"))
 * )
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const copyFrom = (sql: string): Sink.Sink<number, Uint8Array, never, SqlError, SqlClient.SqlClient> =>
  Sink.unwrap(Effect.map(clientCopy, (copy) => copy.copyFrom(sql)))

/**
 * `copyTo` of the `SqlClient` in the context (one of our layers'), failing with `SqlError`
 * whose `cause` is the `PgCopyError`.
 *
 * **Example** (Export a query as CSV)
 *
 * ```ts
 * import * as Stream from "effect/Stream"
 * import { PgCopy } from "@scoped-pool/pg"
 *
 * const rows = PgCopy.copyTo("COPY (SELECT id, name FROM item) TO STDOUT (FORMAT csv)").pipe(
 *   PgCopy.decodeRows(PgCopy.csv),
 *   Stream.runCollect
 * )
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const copyTo = (
  sql: string,
  options?: CopyToOptions
): Stream.Stream<Uint8Array, SqlError, SqlClient.SqlClient> =>
  Stream.unwrap(Effect.map(clientCopy, (copy) => copy.copyTo(sql, options)))

// -------------------------------------------------------------------------------------------
// Formats

/**
 * A COPY format: how rows become bytes and back. Only the format's defaults are written and
 * read, so the COPY statement must not change them (delimiter, quote, NULL string).
 *
 * @since 0.3.0
 * @category models
 */
export interface Format {
  readonly _tag: "Text" | "Csv"
  /** The COPY option that selects it: `""` for text (the default), `"(FORMAT csv)"` for CSV. */
  readonly option: string
  /** @internal */
  readonly encode: (rows: Iterable<ReadonlyArray<unknown>>) => string
  /** @internal */
  readonly decoder: () => Codec.Decoder
}

/**
 * The text format (COPY's default): fields separated by tabs, `\N` for NULL, backslash escapes
 * for backslash, newline, carriage return and tab.
 *
 * @since 0.3.0
 * @category models
 */
export const text: Format = { _tag: "Text", option: "", encode: Codec.encodeText, decoder: Codec.textDecoder }

/**
 * The CSV format (`COPY … (FORMAT csv)`): fields separated by commas, quoted with `"` when they
 * hold a comma, a quote, a line end, or are empty (an unquoted empty field is NULL).
 *
 * @since 0.3.0
 * @category models
 */
export const csv: Format = { _tag: "Csv", option: "(FORMAT csv)", encode: Codec.encodeCsv, decoder: Codec.csvDecoder }

/**
 * Data from `copyTo` (or any COPY output) that does not parse in the format expected.
 *
 * @since 0.3.0
 * @category errors
 */
export class CopyDecodeError extends Data.TaggedError("CopyDecodeError")<{
  readonly format: "Text" | "Csv"
  /** The line of the data, counted from 1 where decoding started. */
  readonly line: number
  readonly reason: string
}> {
  /**
   * @since 0.3.0
   */
  override get message(): string {
    return `COPY data in the ${
      this.format === "Csv" ? "CSV" : "text"
    } format does not parse at line ${this.line}: ${this.reason}; ` +
      "check that the COPY statement uses the format's default options"
  }
}

/**
 * A stream transform: rows, each an array of values in the order of the COPY's columns, into
 * the bytes of `format`, one chunk of bytes per chunk of rows.
 *
 * **Details**
 *
 * `null` and `undefined` are NULL; strings are sent as they are (escaped as the format needs);
 * `Uint8Array`s as `bytea` (hex); other values as statement parameters are: numbers, bigints and
 * booleans by `String`, `Date`s in local time with their offset, arrays as array literals,
 * other objects as JSON.
 *
 * **Example** (Rows as CSV)
 *
 * ```ts
 * import * as Stream from "effect/Stream"
 * import { PgCopy } from "@scoped-pool/pg"
 *
 * const bytes = Stream.make([1, "a,b"], [2, null]).pipe(PgCopy.encodeRows(PgCopy.csv))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const encodeRows =
  (format: Format) => <E, R>(self: Stream.Stream<ReadonlyArray<unknown>, E, R>): Stream.Stream<Uint8Array, E, R> =>
    Stream.mapChunks(self, (rows) => Chunk.of<Uint8Array>(Buffer.from(format.encode(rows), "utf8")))

/**
 * A stream transform: the bytes of `format` (as `copyTo` gives them, or split anywhere) into
 * rows, each an array of the fields' text (`null` for NULL), in the order of the COPY's columns.
 *
 * **Example** (Rows of an export)
 *
 * ```ts
 * import * as Stream from "effect/Stream"
 * import { PgCopy } from "@scoped-pool/pg"
 *
 * const rows = PgCopy.copyTo("COPY item TO STDOUT").pipe(PgCopy.decodeRows(PgCopy.text), Stream.runCollect)
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const decodeRows =
  (format: Format) =>
  <E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<ReadonlyArray<string | null>, E | CopyDecodeError, R> =>
    Stream.suspend(() => {
      const decoder = format.decoder()
      const failure = (error: unknown) =>
        error instanceof Codec.FormatError
          ? new CopyDecodeError({ format: format._tag, line: error.line, reason: error.reason })
          : error
      const rows = Stream.mapChunksEffect(self, (chunk) =>
        Effect.try({
          try: () => {
            const out: Array<ReadonlyArray<string | null>> = []
            for (const bytes of chunk) for (const row of decoder.feed(bytes)) out.push(row)
            return Chunk.unsafeFromArray(out)
          },
          catch: failure as (error: unknown) => CopyDecodeError
        }))
      const end = Stream.execute(
        Effect.try({ try: () => decoder.end(), catch: failure as (e: unknown) => CopyDecodeError })
      )
      return Stream.concat(rows, end)
    })

/**
 * Options of `encodeSchema` and `decodeSchema`.
 *
 * @since 0.3.0
 * @category models
 */
export interface SchemaOptions {
  /** Default: `text`. */
  readonly format?: Format | undefined
  /**
   * The COPY's columns, in its order: the keys of the schema's encoded side taken for each
   * field. Default: the schema's properties, in their order (name them in the COPY too).
   */
  readonly columns?: ReadonlyArray<string> | undefined
}

const columnsOf = (schema: Schema.Schema.Any, options: SchemaOptions | undefined): ReadonlyArray<string> => {
  if (options?.columns !== undefined) return options.columns
  const names = SchemaAST.getPropertySignatures(SchemaAST.encodedAST(schema.ast)).map((p) => String(p.name))
  if (names.length === 0) {
    throw new TypeError("PgCopy: the schema has no properties to take the columns from; give them as columns")
  }
  return names
}

/**
 * A stream transform: typed rows into the bytes of a COPY, through `schema`: each row is
 * encoded (a failure is the `ParseError`), then its encoded fields are taken in the order of
 * the columns and written as `encodeRows` does.
 *
 * **Example** (Typed rows)
 *
 * ```ts
 * import * as Schema from "effect/Schema"
 * import * as Stream from "effect/Stream"
 * import { PgCopy } from "@scoped-pool/pg"
 *
 * const User = Schema.Struct({ id: Schema.Number, email: Schema.String, since: Schema.DateFromSelf })
 * const bytes = Stream.make({ id: 1, email: "a@example.com", since: new Date() }).pipe(PgCopy.encodeSchema(User))
 * // COPY app_user (id, email, since) FROM STDIN
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const encodeSchema = <A, I, RS>(schema: Schema.Schema<A, I, RS>, options?: SchemaOptions) => {
  const columns = columnsOf(schema, options)
  const format = options?.format ?? text
  const encodeAll = Schema.encode(Schema.Array(schema))
  return <E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<Uint8Array, E | ParseError, R | RS> =>
    Stream.mapChunksEffect(self, (chunk) =>
      Effect.map(encodeAll(Chunk.toReadonlyArray(chunk)), (encoded) => {
        const rows = new Array<ReadonlyArray<unknown>>(encoded.length)
        for (let i = 0; i < encoded.length; i++) {
          const record = encoded[i] as Record<string, unknown>
          rows[i] = columns.map((column) => record[column])
        }
        return Chunk.of<Uint8Array>(Buffer.from(format.encode(rows), "utf8"))
      }))
}

/**
 * A stream transform: the bytes of a COPY into typed rows, through `schema`: each row's fields
 * (text, or `null`) are keyed by the columns and decoded (a failure is the `ParseError`; use
 * schemas that read text, such as `Schema.NumberFromString`).
 *
 * **Example** (Typed rows of an export)
 *
 * ```ts
 * import * as Schema from "effect/Schema"
 * import * as Stream from "effect/Stream"
 * import { PgCopy } from "@scoped-pool/pg"
 *
 * const Row = Schema.Struct({ id: Schema.NumberFromString, email: Schema.NullOr(Schema.String) })
 * const users = PgCopy.copyTo("COPY app_user (id, email) TO STDOUT").pipe(PgCopy.decodeSchema(Row))
 * ```
 *
 * @since 0.3.0
 * @category constructors
 */
export const decodeSchema = <A, I, RS>(schema: Schema.Schema<A, I, RS>, options?: SchemaOptions) => {
  const columns = columnsOf(schema, options)
  const decodeAll = Schema.decodeUnknown(Schema.Array(schema))
  const rows = decodeRows(options?.format ?? text)
  return <E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<A, E | CopyDecodeError | ParseError, R | RS> =>
    Stream.mapChunksEffect(rows(self), (chunk) => {
      const records = new Array<Record<string, string | null>>(chunk.length)
      let i = 0
      for (const row of chunk) {
        const record: Record<string, string | null> = {}
        for (let k = 0; k < columns.length; k++) record[columns[k]!] = row[k] ?? null
        records[i++] = record
      }
      return Effect.map(decodeAll(records), (decoded) => Chunk.unsafeFromArray(decoded))
    })
}
