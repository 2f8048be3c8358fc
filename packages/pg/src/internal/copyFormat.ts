/**
 * PostgreSQL's COPY formats, text and CSV, both ways, as pure functions over strings and bytes
 * (no Effect): rows of values → the bytes `COPY … FROM STDIN` reads, and the bytes
 * `COPY … TO STDOUT` writes → rows of strings (or `null`). Only the formats' defaults: text
 * (tab, `\N`, backslash escapes) and CSV (comma, double quote, NULL as an unquoted empty field).
 *
 * Our own rather than a CSV library's: the rules that matter here are PostgreSQL's — NULL is an
 * unquoted empty field and the empty string a quoted one, a lone `\.` must be quoted, the text
 * format is not CSV at all — and both directions work on byte chunks of many rows, split
 * anywhere. The tests hold the codec to PostgreSQL's own parser and printer (a property test
 * round-trips random values through the server, test/copy/formats.test.ts).
 *
 * @internal
 */
import { serialize } from "./wire/values.js"

/** @internal */
export type Field = string | null

/** A value as COPY's text: `null` for NULL, bytea in hex, the rest as parameters are (pg's rules). */
const textOf = (value: unknown): string | null => {
  if (value === null || value === undefined) return null
  if (typeof value === "string") return value
  const text = serialize(value)
  return text === null || typeof text === "string" ? text : `\\x${text.toString("hex")}`
}

const TEXT_SPECIAL = /[\\\n\r\t]/
const TEXT_ESCAPES = /[\\\n\r\t]/g
const textEscape = (c: string): string => c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"

/** Rows in the text format, one line each. @internal */
export const encodeText = (rows: Iterable<ReadonlyArray<unknown>>): string => {
  let out = ""
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      if (i > 0) out += "\t"
      const text = textOf(row[i])
      if (text === null) out += "\\N"
      else out += TEXT_SPECIAL.test(text) ? text.replace(TEXT_ESCAPES, textEscape) : text
    }
    out += "\n"
  }
  return out
}

const CSV_SPECIAL = /[",\n\r]/

/** Rows in the CSV format, one record each. @internal */
export const encodeCsv = (rows: Iterable<ReadonlyArray<unknown>>): string => {
  let out = ""
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      if (i > 0) out += ","
      const text = textOf(row[i])
      if (text === null) continue
      // Quoted: what would split the field, the empty string (else NULL), and `\.` (else the end of data).
      if (text === "" || text === "\\." || CSV_SPECIAL.test(text)) out += `"${text.replace(/"/g, "\"\"")}"`
      else out += text
    }
    out += "\n"
  }
  return out
}

/** Malformed COPY data: what is wrong, and on which line (1-based, counted from the decoder's start). @internal */
export class FormatError extends Error {
  constructor(readonly line: number, readonly reason: string) {
    super(reason)
  }
}

/** Turns byte chunks into rows; chunks may split a row anywhere. @internal */
export interface Decoder {
  /** The rows completed by `chunk`. */
  feed(chunk: Uint8Array): Array<Array<Field>>
  /** The end of the data: throws a `FormatError` if it ends inside a row. */
  end(): void
}

const LF = 0x0a
const CR = 0x0d
const TAB = 0x09
const BACKSLASH = 0x5c
const QUOTE = 0x22
const COMMA = 0x2c

const asBuffer = (chunk: Uint8Array): Buffer =>
  Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)

/** What a chunk leaves unfinished is kept and joined to the next one. */
abstract class Base implements Decoder {
  private rest: Buffer | undefined = undefined
  protected line = 0

  feed(chunk: Uint8Array): Array<Array<Field>> {
    const buf = this.rest === undefined ? asBuffer(chunk) : Buffer.concat([this.rest, chunk])
    const rows: Array<Array<Field>> = []
    const used = this.rows(buf, rows)
    this.rest = used < buf.length ? buf.subarray(used) : undefined
    return rows
  }

  end(): void {
    if (this.rest !== undefined) {
      throw new FormatError(this.line + 1, "the data ends inside a row (no line end after its last field)")
    }
  }

  /** Parses the complete rows of `buf` into `rows`; returns how many bytes they took. */
  protected abstract rows(buf: Buffer, rows: Array<Array<Field>>): number
}

const octal = (b: number) => b >= 0x30 && b <= 0x37
const hexValue = (b: number): number =>
  b >= 0x30 && b <= 0x39 ? b - 0x30 : b >= 0x61 && b <= 0x66 ? b - 0x57 : b >= 0x41 && b <= 0x46 ? b - 0x37 : -1

/** One text-format field: `\N`, or unescaped (the escapes PostgreSQL reads: \b \f \n \r \t \v, octal, \x hex, \c). */
const textField = (buf: Buffer, start: number, end: number): Field => {
  if (end - start === 2 && buf[start] === BACKSLASH && buf[start + 1] === 0x4e) return null
  const first = buf.indexOf(BACKSLASH, start)
  if (first === -1 || first >= end) return buf.toString("utf8", start, end)
  const out = Buffer.allocUnsafe(end - start)
  let n = 0
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b !== BACKSLASH || i + 1 >= end) {
      out[n++] = b
      continue
    }
    const c = buf[++i]!
    switch (c) {
      case 0x62:
        out[n++] = 0x08
        break
      case 0x66:
        out[n++] = 0x0c
        break
      case 0x6e:
        out[n++] = LF
        break
      case 0x72:
        out[n++] = CR
        break
      case 0x74:
        out[n++] = TAB
        break
      case 0x76:
        out[n++] = 0x0b
        break
      case 0x78: {
        let value = hexValue(buf[i + 1] ?? -1)
        if (i + 1 >= end || value < 0) {
          out[n++] = c
          break
        }
        i++
        const second = i + 1 < end ? hexValue(buf[i + 1]!) : -1
        if (second >= 0) {
          value = value * 16 + second
          i++
        }
        out[n++] = value
        break
      }
      default:
        if (octal(c)) {
          let value = c - 0x30
          for (let k = 0; k < 2 && i + 1 < end && octal(buf[i + 1]!); k++) value = value * 8 + buf[++i]! - 0x30
          out[n++] = value & 0xff
        } else {
          out[n++] = c
        }
    }
  }
  return out.toString("utf8", 0, n)
}

class TextDecoder extends Base {
  protected rows(buf: Buffer, rows: Array<Array<Field>>): number {
    let start = 0
    for (let lf = buf.indexOf(LF, start); lf !== -1; lf = buf.indexOf(LF, start)) {
      this.line++
      // A lone `\.` is the old end-of-data marker: nothing follows it.
      if (lf - start === 2 && buf[start] === BACKSLASH && buf[start + 1] === 0x2e) return buf.length
      const row: Array<Field> = []
      let field = start
      for (let tab = buf.indexOf(TAB, field); tab !== -1 && tab < lf; tab = buf.indexOf(TAB, field)) {
        row.push(textField(buf, field, tab))
        field = tab + 1
      }
      row.push(textField(buf, field, lf > start && buf[lf - 1] === CR ? lf - 1 : lf))
      rows.push(row)
      start = lf + 1
    }
    return start
  }
}

class CsvDecoder extends Base {
  protected rows(buf: Buffer, rows: Array<Array<Field>>): number {
    let start = 0
    const length = buf.length
    for (;;) {
      const row: Array<Field> = []
      let i = start
      let lines = 1
      let complete = false
      for (;;) {
        if (i >= length) break
        if (buf[i] === QUOTE) {
          // A quoted field: "" is a quote; it ends at a lone quote.
          let parts: Array<string> | undefined
          let from = i + 1
          let j = from
          for (;;) {
            j = buf.indexOf(QUOTE, j)
            if (j === -1) break
            if (buf[j + 1] === QUOTE) {
              ;(parts ??= []).push(buf.toString("utf8", from, j + 1))
              j += 2
              from = j
              continue
            }
            break
          }
          if (j === -1 || j + 1 >= length) break // the quote may go on in the next chunk
          for (let k = i; k < j; k++) if (buf[k] === LF) lines++
          const tail = buf.toString("utf8", from, j)
          row.push(parts === undefined ? tail : parts.join("") + tail)
          i = j + 1
          const next = buf[i]
          if (next === COMMA) {
            i++
            continue
          }
          if (next === LF || (next === CR && buf[i + 1] === LF)) {
            i += next === CR ? 2 : 1
            complete = true
            break
          }
          if (next === CR) break // its LF may be in the next chunk
          throw new FormatError(this.line + lines, "a quoted CSV field is followed by more than a comma or a line end")
        }
        // An unquoted field: empty is NULL.
        let j = i
        while (j < length && buf[j] !== COMMA && buf[j] !== LF) j++
        if (j >= length) break
        const end = buf[j] === LF && j > i && buf[j - 1] === CR ? j - 1 : j
        if (row.length === 0 && buf[j] === LF && end - i === 2 && buf[i] === BACKSLASH && buf[i + 1] === 0x2e) {
          // A lone unquoted `\.`: the end-of-data marker.
          this.line += lines
          return length
        }
        row.push(end === i ? null : buf.toString("utf8", i, end))
        i = j + 1
        if (buf[j] === LF) {
          complete = true
          break
        }
      }
      if (!complete) return start
      this.line += lines
      rows.push(row)
      start = i
    }
  }
}

/** A decoder of the text format. @internal */
export const textDecoder = (): Decoder => new TextDecoder()

/** A decoder of the CSV format. @internal */
export const csvDecoder = (): Decoder => new CsvDecoder()
