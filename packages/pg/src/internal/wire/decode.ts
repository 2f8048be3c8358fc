/**
 * Result columns, decoded straight from the bytes of a DataRow into the values `pg` would give
 * (`pg-types` 2 text parsers: see `values.ts`), in either wire format:
 *
 * - **binary**, for the types where it is faster and gives the very same value: `bool`,
 *   `bytea`, `int2`, `int4`, `int8` (a string, as `pg-types`), `oid`, `date`, `timestamp`,
 *   `timestamptz`. Timestamps are the big win: `pg-types` runs a regular expression and builds
 *   the Date field by field (~1–2 µs a value); the binary value is one 64-bit integer. Each
 *   decoder reproduces the text parser's result exactly, rounding included (`postgres-date`
 *   truncates microseconds to milliseconds, reads `date` and `timestamp` as local time, maps
 *   `infinity` to `Infinity`, years 0–99 and BC years as it does);
 * - **text** for every other type, through the type's parser; a few builtin parsers are read
 *   from the bytes without making a string first (integers, `bool`, and the types `pg-types`
 *   leaves as strings).
 *
 * Binary is used for a column only while its type's text parser is `pg-types`' own (the one it
 * had when this module loaded): a `types` override, or `pg-types.setTypeParser` for that type,
 * keeps it text. Date and time types need the session's `DateStyle` to be ISO (the only one
 * `postgres-date` reads; under another one the text values are what `pg` makes of them, so
 * binary would differ). Not binary, and why: `float4`/`float8` (their text depends on
 * `extra_float_digits`, which the client cannot see: binary would be exact where text is
 * rounded), `numeric` (a string either way: text is cheaper), `uuid`, `json`/`jsonb` and the
 * text types (the same bytes either way), intervals and arrays (not done).
 *
 * Plain TypeScript: no `effect` import (see README.md in this folder).
 *
 * @internal
 */
import { defaultTypes, type TypeParsers } from "./values.js"

/** Decodes one non-NULL column value from `buf[start, end)`. @internal */
export type Decoder = (buf: Buffer, start: number, end: number) => unknown

/** Type OIDs. @internal */
export const enum Oid {
  Bool = 16,
  Bytea = 17,
  Name = 19,
  Int8 = 20,
  Int2 = 21,
  Int4 = 23,
  Text = 25,
  Oid = 26,
  Bpchar = 1042,
  Varchar = 1043,
  Date = 1082,
  Timestamp = 1114,
  Timestamptz = 1184
}

// The parsers pg-types had when this module loaded: a decoder stands in for one of these only.
const builtin = (oid: number) => defaultTypes.getTypeParser(oid, "text")
const noParse = builtin(Oid.Text)
const builtinInteger = builtin(Oid.Int4)
const builtinInt2 = builtin(Oid.Int2)
const builtinOid = builtin(Oid.Oid)
const builtinBool = builtin(Oid.Bool)
const builtinByBinary = new Map<number, (value: string) => unknown>([
  [Oid.Bool, builtinBool],
  [Oid.Bytea, builtin(Oid.Bytea)],
  [Oid.Int8, builtin(Oid.Int8)],
  [Oid.Int2, builtinInt2],
  [Oid.Int4, builtinInteger],
  [Oid.Oid, builtinOid],
  [Oid.Date, builtin(Oid.Date)],
  [Oid.Timestamp, builtin(Oid.Timestamp)],
  [Oid.Timestamptz, builtin(Oid.Timestamptz)]
])
const dateTypes = (oid: number) => oid === Oid.Date || oid === Oid.Timestamp || oid === Oid.Timestamptz

/**
 * Whether a column of type `oid` can be asked for in binary: it has a binary decoder, `types`
 * parses it with `pg-types`' own parser, and (for date and time types) `dateStyleIso`.
 *
 * @internal
 */
export const binaryOk = (types: TypeParsers, oid: number, dateStyleIso: boolean): boolean => {
  const parser = builtinByBinary.get(oid)
  if (parser === undefined || types.getTypeParser(oid, "text") !== parser) return false
  return dateStyleIso || !dateTypes(oid)
}

/**
 * Whether a column of type `oid` in binary saves more than the extended protocol costs a
 * statement that could go as a simple query (~1.5 µs of client CPU for Parse, Bind, Describe and
 * their answers): dates and times (a text parse of ~1–2 µs each) and bytea (hex text, twice the
 * bytes). Integers and booleans are cheap in text.
 *
 * @internal
 */
export const binaryPays = (oid: number): boolean =>
  oid === Oid.Timestamptz || oid === Oid.Timestamp || oid === Oid.Date || oid === Oid.Bytea

// ---------------------------------------------------------------------------------------------
// Text

/**
 * UTF-8 text. Short ASCII values are built in JavaScript: `Buffer#toString` costs ~100 ns in the
 * call into C++ alone, four times what a string of up to 8 characters costs made here.
 */
const utf8: Decoder = (buf, start, end) => {
  if (end - start > 8) return buf.toString("utf8", start, end)
  let out = ""
  for (let at = start; at < end; at++) {
    const c = buf[at]!
    if (c >= 0x80) return buf.toString("utf8", start, end)
    out += String.fromCharCode(c)
  }
  return out
}

/** `parseInt(text, 10)` of an integer's text output, without the string. */
const integerText: Decoder = (buf, start, end) => {
  let at = start
  const negative = buf[at] === 0x2d
  if (negative) at++
  let n = 0
  for (; at < end; at++) n = n * 10 + (buf[at]! - 0x30)
  return negative ? -n : n
}

/** `pg-types`' parseBool of the server's `t` / `f`. */
const boolText: Decoder = (buf, start, end) =>
  end - start === 1 ? buf[start] === 0x74 : builtinBool(utf8(buf, start, end) as string)

/**
 * The decoder of a text column: `parser` (what `types` gives for the type), read straight from
 * the bytes when it is a builtin parser that allows it.
 *
 * @internal
 */
export const textDecoder = (parser: (text: string) => unknown): Decoder => {
  if (parser === noParse) return utf8
  if (parser === builtinInteger || parser === builtinInt2 || parser === builtinOid) return integerText
  if (parser === builtinBool) return boolText
  return (buf, start, end) => parser(buf.toString("utf8", start, end))
}

// ---------------------------------------------------------------------------------------------
// Binary

const int32At = (buf: Buffer, at: number): number =>
  (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!

const uint32At = (buf: Buffer, at: number): number => int32At(buf, at) >>> 0

const TWO_32 = 4294967296
// Below this, hi * 2^32 + lo is exact in a double (|value| < 2^52).
const SAFE_HI = 1 << 20

const int8Binary: Decoder = (buf, start) => {
  const hi = int32At(buf, start)
  const lo = uint32At(buf, start + 4)
  if (hi > -SAFE_HI && hi < SAFE_HI) return String(hi * TWO_32 + lo)
  return buf.readBigInt64BE(start).toString()
}

const int4Binary: Decoder = (buf, start) => int32At(buf, start)
const int2Binary: Decoder = (buf, start) => (buf[start]! << 24) >> 24 << 8 | buf[start + 1]!
const oidBinary: Decoder = (buf, start) => uint32At(buf, start)
const boolBinary: Decoder = (buf, start) => buf[start] !== 0

/** A copy, as `pg-types` gives a Buffer of its own (and the socket's bytes are reused). */
const byteaBinary: Decoder = (buf, start, end) => {
  const out = Buffer.allocUnsafe(end - start)
  buf.copy(out, 0, start, end)
  return out
}

// Microseconds (timestamps) or days (dates) since 2000-01-01, PostgreSQL's epoch.
const EPOCH_2000_MILLIS = 946_684_800_000
const DAY_MILLIS = 86_400_000
const INT32_MAX = 0x7fffffff
const INT32_MIN = -0x80000000

/**
 * A timestamp's 64-bit microseconds as milliseconds since 1970, truncated toward the earlier
 * millisecond as `postgres-date` does (it reads whole seconds, then `1000 * 0.xxxxxx`, which
 * for every microsecond count is `floor(micros / 1000)`); ±Infinity for `infinity`.
 */
const timestampMillis = (buf: Buffer, start: number): number => {
  const hi = int32At(buf, start)
  const lo = uint32At(buf, start + 4)
  if (hi === INT32_MAX && lo === 0xffffffff) return Infinity
  if (hi === INT32_MIN && lo === 0) return -Infinity
  if (hi > -SAFE_HI && hi < SAFE_HI) return Math.floor((hi * TWO_32 + lo) / 1000) + EPOCH_2000_MILLIS
  const micros = buf.readBigInt64BE(start)
  const millis = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n)
  return Number(millis) + EPOCH_2000_MILLIS
}

/** `postgres-date` on `timestamptz`: the instant (the text's offset applied), or ±Infinity. */
const timestamptzBinary: Decoder = (buf, start) => {
  const millis = timestampMillis(buf, start)
  return millis === Infinity || millis === -Infinity ? millis : new Date(millis)
}

/** `new Date(year, month, day, …)` in local time, years 0–99 kept as such: `postgres-date`'s construction. */
const localDate = (utcFields: Date, withTime: boolean): Date => {
  const year = utcFields.getUTCFullYear()
  const date = withTime
    ? new Date(
      year,
      utcFields.getUTCMonth(),
      utcFields.getUTCDate(),
      utcFields.getUTCHours(),
      utcFields.getUTCMinutes(),
      utcFields.getUTCSeconds(),
      utcFields.getUTCMilliseconds()
    )
    : new Date(year, utcFields.getUTCMonth(), utcFields.getUTCDate())
  if (year >= 0 && year < 100) date.setFullYear(year)
  return date
}

/** `postgres-date` on `timestamp`: its fields read as local time, or ±Infinity. */
const timestampBinary: Decoder = (buf, start) => {
  const millis = timestampMillis(buf, start)
  if (millis === Infinity || millis === -Infinity) return millis
  return localDate(new Date(millis), true)
}

/** `postgres-date` on `date`: local midnight of that day, or ±Infinity. */
const dateBinary: Decoder = (buf, start) => {
  const days = int32At(buf, start)
  if (days === INT32_MAX) return Infinity
  if (days === INT32_MIN) return -Infinity
  return localDate(new Date(EPOCH_2000_MILLIS + days * DAY_MILLIS), false)
}

const binaryDecoders = new Map<number, Decoder>([
  [Oid.Bool, boolBinary],
  [Oid.Bytea, byteaBinary],
  [Oid.Int8, int8Binary],
  [Oid.Int2, int2Binary],
  [Oid.Int4, int4Binary],
  [Oid.Oid, oidBinary],
  [Oid.Date, dateBinary],
  [Oid.Timestamp, timestampBinary],
  [Oid.Timestamptz, timestamptzBinary]
])

/** The binary decoder of `oid`, if there is one. @internal */
export const binaryDecoder = (oid: number): Decoder | undefined => binaryDecoders.get(oid)
