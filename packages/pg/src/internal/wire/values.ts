/**
 * Values in and out, with `pg`'s semantics so that results and parameters are the same as
 * with `@effect/sql-pg` 0.53 (which runs on `pg`):
 *
 * - out: every column arrives as text and goes through `types.getTypeParser(oid, "text")`,
 *   `pg-types` 2 by default (int8 and numeric as strings, timestamps as Date, json parsed,
 *   arrays, …), or the user's `types` override;
 * - in: `null`/`undefined` → NULL, Buffer and typed arrays → binary, Date → local time with
 *   offset, arrays → array literal, `toPostgres()` objects → their value, other objects → JSON,
 *   everything else → `String(value)`.
 *
 * @internal
 */
import pgTypes from "pg-types"

/** What parses result values: `pg-types`, or any object with its `getTypeParser`. @internal */
export interface TypeParsers {
  readonly getTypeParser: (oid: number, format?: string) => (value: any) => any
}

/** @internal */
export const defaultTypes: TypeParsers = pgTypes as unknown as TypeParsers

const pad = (n: number, width: number): string => String(n).padStart(width, "0")

/** A Date as `pg` sends it: local time with the UTC offset, `BC` for years before 1. @internal */
export const dateToString = (date: Date): string => {
  let offset = -date.getTimezoneOffset()
  let year = date.getFullYear()
  const bc = year < 1
  if (bc) year = Math.abs(year) + 1
  let out = `${pad(year, 4)}-${pad(date.getMonth() + 1, 2)}-${pad(date.getDate(), 2)}T${pad(date.getHours(), 2)}:${
    pad(date.getMinutes(), 2)
  }:${pad(date.getSeconds(), 2)}.${pad(date.getMilliseconds(), 3)}`
  if (offset < 0) {
    out += "-"
    offset = -offset
  } else {
    out += "+"
  }
  out += `${pad(Math.floor(offset / 60), 2)}:${pad(offset % 60, 2)}`
  return bc ? out + " BC" : out
}

const escapeElement = (text: string): string => `"${text.replace(/\\/g, "\\\\").replace(/"/g, "\\\"")}"`

const toBuffer = (view: ArrayBufferView): Buffer =>
  Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)

const arrayLiteral = (values: ReadonlyArray<unknown>, seen: Array<unknown> | undefined): string => {
  let out = "{"
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ","
    const v = values[i]
    if (v === null || v === undefined) out += "NULL"
    else if (Array.isArray(v)) out += arrayLiteral(v, seen)
    else if (ArrayBuffer.isView(v)) out += `\\\\x${toBuffer(v).toString("hex")}`
    else out += escapeElement(serialize(v, seen) as string)
  }
  return out + "}"
}

/**
 * One parameter on the wire: `null`, text, or a Buffer (sent in binary format). Throws on what
 * cannot be serialised (a circular object); the caller fails the statement before sending it.
 *
 * @internal
 */
export const serialize = (value: unknown, seen?: Array<unknown>): string | Buffer | null => {
  if (value === null || value === undefined) return null
  if (typeof value !== "object") return String(value)
  if (Buffer.isBuffer(value)) return value
  if (ArrayBuffer.isView(value)) return toBuffer(value)
  if (value instanceof Date) return dateToString(value)
  if (Array.isArray(value)) return arrayLiteral(value, seen)
  const custom = value as { toPostgres?: (prepare: (v: unknown) => unknown) => unknown }
  if (typeof custom.toPostgres === "function") {
    const chain = seen ?? []
    if (chain.includes(value)) throw new Error(`circular reference detected while preparing "${value}" for query`)
    chain.push(value)
    return serialize(custom.toPostgres((v) => serialize(v)), chain)
  }
  return JSON.stringify(value)
}

/** Serialises every parameter; throws as `serialize` does. @internal */
export const serializeAll = (params: ReadonlyArray<unknown>): Array<string | Buffer | null> => {
  const out = new Array<string | Buffer | null>(params.length)
  for (let i = 0; i < params.length; i++) out[i] = serialize(params[i])
  return out
}
