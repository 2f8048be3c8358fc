/**
 * An in-process stand-in for a PostgreSQL server, as a `Duplex` for the `stream` option: it
 * answers the startup (trust), simple queries and extended-protocol statements (Parse, Bind,
 * Describe, Execute, Sync, Close) with canned results, in text or binary format as Bind asks.
 * Answers go out on the next turn of the event loop (`setImmediate`), all the Syncs of one
 * write in one chunk, as a server's answers arrive on a socket. No kernel, no server process:
 * what a benchmark measures over it is the client's own CPU (`bench/client-cpu.ts`).
 *
 * Results, chosen by the statement's text: `generate_series` → 100 rows of (int4, text,
 * timestamptz); `INSERT` → no rows, `INSERT 0 1`; `BEGIN`/`COMMIT`/`ROLLBACK` → their tags
 * (and the transaction status); anything else → one row, one int4 column `1`.
 */
import { Duplex } from "node:stream"

interface Column {
  readonly name: string
  readonly oid: number
  readonly text: (row: number) => string
  readonly binary: (row: number) => Buffer
}

const int4 = (n: number) => {
  const b = Buffer.allocUnsafe(4)
  b.writeInt32BE(n, 0)
  return b
}
const epoch2000 = Date.UTC(2000, 0, 1)
const stamp = Date.UTC(2026, 11, 1, 10, 41, 3, 17)
const timestamptz = () => {
  const b = Buffer.allocUnsafe(8)
  b.writeBigInt64BE(BigInt(stamp - epoch2000) * 1000n + 123n, 0)
  return b
}

const one: ReadonlyArray<Column> = [{ name: "?column?", oid: 23, text: () => "1", binary: () => int4(1) }]
const rows3: ReadonlyArray<Column> = [
  { name: "g", oid: 23, text: (r) => String(r + 1), binary: (r) => int4(r + 1) },
  { name: "g", oid: 25, text: (r) => String(r + 1), binary: (r) => Buffer.from(String(r + 1)) },
  {
    name: "now",
    oid: 1184,
    text: () => "2026-12-01 10:41:03.017123+00",
    binary: timestamptz
  }
]

interface Shape {
  readonly columns: ReadonlyArray<Column>
  readonly rows: number
  readonly tag: string
  readonly tx?: number
  /** Encoded results, by format codes: with a RowDescription, and without. */
  readonly described: Map<string, Buffer>
  readonly executed: Map<string, Buffer>
  /** By the raw result-format codes of a Bind: the formats and the Describe answer. */
  readonly bound: Map<string, { readonly formats: ReadonlyArray<number>; readonly describe: Buffer }>
}

const shapeOf = (sql: string): Shape => ({
  ...shapeOf_(sql),
  described: new Map(),
  executed: new Map(),
  bound: new Map()
})

const shapeOf_ = (sql: string): Omit<Shape, "described" | "executed" | "bound"> => {
  if (sql.includes("generate_series")) return { columns: rows3, rows: 100, tag: "SELECT 100" }
  if (/^\s*insert/i.test(sql)) return { columns: [], rows: 0, tag: "INSERT 0 1" }
  if (/^\s*(begin|start)/i.test(sql)) return { columns: [], rows: 0, tag: "BEGIN", tx: 0x54 }
  if (/^\s*(commit|end)/i.test(sql)) return { columns: [], rows: 0, tag: "COMMIT", tx: 0x49 }
  if (/^\s*rollback/i.test(sql)) return { columns: [], rows: 0, tag: "ROLLBACK", tx: 0x49 }
  return { columns: one, rows: 1, tag: "SELECT 1" }
}

class Out {
  private parts: Array<Buffer> = []
  msg(type: number, body: Buffer): void {
    const head = Buffer.allocUnsafe(5)
    head[0] = type
    head.writeInt32BE(body.length + 4, 1)
    this.parts.push(head, body)
  }
  raw(b: Buffer): void {
    if (b.length > 0) this.parts.push(b)
  }
  take(): Buffer {
    if (this.parts.length === 1) {
      const only = this.parts[0]!
      this.parts = []
      return only
    }
    const out = Buffer.concat(this.parts)
    this.parts = []
    return out
  }
}

const cstring = (s: string) => Buffer.from(s + "\0")

const shapes = new Map<string, Shape>()
const cachedShapeOf = (sql: string): Shape => {
  let shape = shapes.get(sql)
  if (shape === undefined) {
    shape = shapeOf(sql)
    shapes.set(sql, shape)
  }
  return shape
}
const empty = Buffer.alloc(0)
const readyIdle = Buffer.from([0x5a, 0, 0, 0, 5, 0x49])
const parseComplete = Buffer.from([0x31, 0, 0, 0, 4])
const bindComplete = Buffer.from([0x32, 0, 0, 0, 4])
const closeComplete = Buffer.from([0x33, 0, 0, 0, 4])
const readyTx = Buffer.from([0x5a, 0, 0, 0, 5, 0x54])

const rowDescription = (columns: ReadonlyArray<Column>, formats: ReadonlyArray<number>): Buffer => {
  const parts: Array<Buffer> = [Buffer.from([columns.length >> 8, columns.length & 0xff])]
  columns.forEach((c, i) => {
    const b = Buffer.alloc(18)
    b.writeUInt32BE(c.oid, 6)
    b.writeInt16BE(c.oid === 25 ? -1 : 4, 10)
    b.writeInt32BE(-1, 12)
    b.writeInt16BE(formats[i] ?? 0, 16)
    parts.push(cstring(c.name), b)
  })
  return Buffer.concat(parts)
}

const noFormats: ReadonlyArray<number> = []
const formatKeys = new WeakMap<ReadonlyArray<number>, string>()
/** One code per column; `[]` for all text. */
const formatsFor = (codes: ReadonlyArray<number>, n: number): ReadonlyArray<number> =>
  codes.length === 0 || (codes.length === 1 && codes[0] === 0)
    ? noFormats
    : Array.from({ length: n }, (_, i) => codes.length === 1 ? codes[0]! : codes[i] ?? 0)

/** The server side of one connection. */
export class FakeServer extends Duplex {
  private started = false
  private pending: Buffer | undefined = undefined
  private readonly out = new Out()
  private tx = 0x49
  private readonly prepared = new Map<string, string>()
  private unnamed = ""
  private portal: { sql: string; formats: ReadonlyArray<number>; describe: Buffer } | undefined = undefined
  private failed = false
  private scheduled = false

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = undefined
    let off = 0
    if (!this.started) {
      if (buf.length < 4) {
        this.pending = buf
        return callback()
      }
      const len = buf.readInt32BE(0)
      if (buf.length < len) {
        this.pending = buf
        return callback()
      }
      this.started = true
      off = len
      this.out.msg(0x52, int4(0))
      const key = Buffer.allocUnsafe(8)
      key.writeInt32BE(4242, 0)
      key.writeInt32BE(7, 4)
      this.out.msg(0x4b, key)
      this.out.msg(0x53, Buffer.concat([cstring("server_version"), cstring("17.0")]))
      this.out.msg(0x5a, Buffer.from([0x49]))
    }
    while (buf.length - off >= 5) {
      const size = buf.readInt32BE(off + 1)
      if (off + 1 + size > buf.length) break
      this.message(buf[off]!, buf, off + 5, off + 1 + size)
      off += 1 + size
    }
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off))
    this.schedule()
    callback()
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback()
    setImmediate(() => this.push(null))
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      const out = this.out.take()
      if (out.length > 0) this.push(out)
    })
  }

  private result(shape: Shape, formats: ReadonlyArray<number>, describe: boolean): void {
    const cache = describe ? shape.described : shape.executed
    const key = formats.length === 0 ? "" : formatKeys.get(formats) ?? formats.join("")
    if (formats.length > 0) formatKeys.set(formats, key)
    const cached = cache.get(key)
    if (cached !== undefined) {
      this.out.raw(cached)
      if (shape.tx !== undefined) this.tx = shape.tx
      return
    }
    const before = this.out.take()
    this.out.raw(before)
    this.build(shape, formats, describe)
    const all = this.out.take()
    cache.set(key, all.subarray(before.length))
    this.out.raw(all)
  }

  private build(shape: Shape, formats: ReadonlyArray<number>, describe: boolean): void {
    if (describe) {
      if (shape.columns.length === 0) this.out.msg(0x6e, empty)
      else this.out.msg(0x54, rowDescription(shape.columns, formats))
    }
    for (let r = 0; r < shape.rows; r++) {
      const parts: Array<Buffer> = [Buffer.from([shape.columns.length >> 8, shape.columns.length & 0xff])]
      shape.columns.forEach((c, i) => {
        const value = formats[i] === 1 ? c.binary(r) : Buffer.from(c.text(r))
        parts.push(int4(value.length), value)
      })
      this.out.msg(0x44, Buffer.concat(parts))
    }
    this.out.msg(0x43, cstring(shape.tag))
    if (shape.tx !== undefined) this.tx = shape.tx
  }

  private message(type: number, buf: Buffer, start: number, end: number): void {
    if (type === 0x53) { // Sync
      this.failed = false
      this.portal = undefined
      this.out.raw(this.tx === 0x49 ? readyIdle : readyTx)
      return
    }
    if (type === 0x51) { // Q
      const sql = buf.toString("utf8", start, end - 1)
      this.result(cachedShapeOf(sql), noFormats, true)
      this.out.raw(this.tx === 0x49 ? readyIdle : readyTx)
      return
    }
    const body = buf.subarray(start, end)
    switch (type) {
      case 0x51: { // Q
        const sql = body.toString("utf8", 0, body.length - 1)
        const shape = cachedShapeOf(sql)
        this.result(shape, noFormats, true)
        this.out.raw(this.tx === 0x49 ? readyIdle : readyTx)
        return
      }
      case 0x50: { // Parse
        if (this.failed) return
        const nul = body.indexOf(0)
        const name = nul === 0 ? "" : body.toString("utf8", 0, nul)
        const sql = body.toString("utf8", nul + 1, body.indexOf(0, nul + 1))
        if (name === "") this.unnamed = sql
        else this.prepared.set(name, sql)
        this.out.raw(parseComplete)
        return
      }
      case 0x42: { // Bind
        if (this.failed) return
        let at = body.indexOf(0) + 1
        const nul = body.indexOf(0, at)
        const statement = body.toString("utf8", at, nul)
        at = nul + 1
        const nFormats = body.readInt16BE(at)
        at += 2 + 2 * nFormats
        const nValues = body.readInt16BE(at)
        at += 2
        for (let i = 0; i < nValues; i++) {
          const len = body.readInt32BE(at)
          at += 4 + Math.max(0, len)
        }
        const nResult = body.readInt16BE(at)
        const sql = statement === "" ? this.unnamed : this.prepared.get(statement) ?? ""
        const shape = cachedShapeOf(sql)
        const key = nResult === 0 ? "" : body.toString("latin1", at + 2, at + 2 + 2 * nResult)
        let bound = shape.bound.get(key)
        if (bound === undefined) {
          const codes: Array<number> = []
          for (let i = 0; i < nResult; i++) codes.push(body.readInt16BE(at + 2 + 2 * i))
          const formats = formatsFor(codes, shape.columns.length)
          const out = new Out()
          if (shape.columns.length === 0) out.msg(0x6e, empty)
          else out.msg(0x54, rowDescription(shape.columns, formats))
          bound = { formats, describe: out.take() }
          shape.bound.set(key, bound)
        }
        this.portal = { sql, formats: bound.formats, describe: bound.describe }
        this.out.raw(bindComplete)
        return
      }
      case 0x44: { // Describe
        if (this.failed) return
        const kind = body[0]
        if (kind === 0x53) {
          const name = body.toString("utf8", 1, body.length - 1)
          const sql = name === "" ? this.unnamed : this.prepared.get(name) ?? ""
          const shape = cachedShapeOf(sql)
          this.out.msg(0x74, Buffer.from([0, 0]))
          if (shape.columns.length === 0) this.out.msg(0x6e, empty)
          else this.out.msg(0x54, rowDescription(shape.columns, noFormats))
        } else if (this.portal !== undefined) {
          this.out.raw(this.portal.describe)
        }
        return
      }
      case 0x45: { // Execute
        if (this.failed || this.portal === undefined) return
        this.result(cachedShapeOf(this.portal.sql), this.portal.formats, false)
        return
      }
      case 0x43: { // Close
        if (this.failed) return
        const name = body.toString("utf8", 1, body.length - 1)
        if (body[0] === 0x53) this.prepared.delete(name)
        this.out.raw(closeComplete)
        return
      }
      case 0x53: // Sync
        this.failed = false
        this.portal = undefined
        this.out.raw(this.tx === 0x49 ? readyIdle : readyTx)
        return
      case 0x48: // Flush
        return
      case 0x58: // Terminate
        setImmediate(() => this.push(null))
        return
    }
  }
}
