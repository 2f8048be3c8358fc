/**
 * The PostgreSQL frontend/backend protocol (3.0, and 3.2's variable-length cancel key): a
 * `Writer` that encodes frontend messages into one growing slab per connection, and a `Reader`
 * that frames backend messages out of socket chunks and hands each one, as a view on the bytes
 * (type, buffer, start, end), to a handler. Nothing is allocated per message but what the
 * handler decodes. Plain TypeScript: no `effect` import (see README.md in this folder).
 *
 * @internal
 */

/** Protocol version codes of the startup packet and of the special requests. @internal */
export const PROTOCOL_3_0 = 196608
/** @internal */
export const PROTOCOL_3_2 = 196610
/** @internal */
export const SSL_REQUEST_CODE = 80877103
/** @internal */
export const CANCEL_REQUEST_CODE = 80877102

/** Backend message type bytes. @internal */
export const enum Backend {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  CommandComplete = 0x43, // C
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  NegotiateProtocolVersion = 0x76, // v
  NoData = 0x6e, // n
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterDescription = 0x74, // t
  ParameterStatus = 0x53, // S
  ParseComplete = 0x31, // 1
  PortalSuspended = 0x73, // s
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54 // T
}

const SLAB = 16 * 1024

/**
 * Frontend messages, appended to a slab; `take` returns what was written since the last take
 * (a view, handed to the socket) and the next messages go after it. A message that does not
 * fit starts a new slab: a slab handed to the socket is never written again.
 *
 * @internal
 */
export class Writer {
  private buf: Buffer = Buffer.allocUnsafe(SLAB)
  private start = 0
  private off = 0

  get pending(): number {
    return this.off - this.start
  }

  /** Makes room for `n` more bytes, moving the unsent part to a new slab when needed. */
  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return
    const unsent = this.off - this.start
    const next = Buffer.allocUnsafe(Math.max(SLAB, (unsent + n) * 2))
    this.buf.copy(next, 0, this.start, this.off)
    this.buf = next
    this.start = 0
    this.off = unsent
  }

  /** The bytes written since the last take, or `undefined` when there are none. */
  take(): Buffer | undefined {
    if (this.off === this.start) return undefined
    const out = this.buf.subarray(this.start, this.off)
    this.start = this.off
    // Less than a message's worth left: the next write starts a new slab anyway.
    if (this.buf.length - this.off < 256) {
      this.buf = Buffer.allocUnsafe(SLAB)
      this.start = this.off = 0
    }
    return out
  }

  private byte(b: number): void {
    this.buf[this.off++] = b
  }

  private int16(n: number): void {
    this.buf.writeInt16BE(n, this.off)
    this.off += 2
  }

  private int32(n: number): void {
    this.buf.writeInt32BE(n, this.off)
    this.off += 4
  }

  /** A NUL-terminated string; the caller has ensured room (3 bytes per UTF-16 unit + 1). */
  private cstring(s: string): void {
    this.off += this.buf.write(s, this.off, "utf8")
    this.buf[this.off++] = 0
  }

  /** Starts a message with a type byte: returns where its length goes. */
  private begin(type: number, room: number): number {
    this.ensure(room + 5)
    this.buf[this.off] = type
    const at = this.off + 1
    this.off += 5
    return at
  }

  private end(at: number): void {
    this.buf.writeInt32BE(this.off - at, at)
  }

  startup(protocol: number, parameters: ReadonlyArray<readonly [string, string]>): void {
    let room = 9
    for (const [k, v] of parameters) room += 3 * (k.length + v.length) + 2
    this.ensure(room + 4)
    const at = this.off
    this.off += 4
    this.int32(protocol)
    for (const [k, v] of parameters) {
      this.cstring(k)
      this.cstring(v)
    }
    this.byte(0)
    this.buf.writeInt32BE(this.off - at, at)
  }

  sslRequest(): void {
    this.ensure(8)
    this.int32(8)
    this.int32(SSL_REQUEST_CODE)
  }

  /** `p`: a password (cleartext or MD5 hash). */
  password(text: string): void {
    const at = this.begin(0x70, 3 * text.length + 1)
    this.cstring(text)
    this.end(at)
  }

  /** `p`: SASLInitialResponse. */
  saslInitial(mechanism: string, data: Buffer): void {
    const at = this.begin(0x70, 3 * mechanism.length + 5 + data.length)
    this.cstring(mechanism)
    this.int32(data.length)
    data.copy(this.buf, this.off)
    this.off += data.length
    this.end(at)
  }

  /** `p`: SASLResponse. */
  saslResponse(data: Buffer): void {
    const at = this.begin(0x70, data.length)
    data.copy(this.buf, this.off)
    this.off += data.length
    this.end(at)
  }

  /** `Q`: a simple query (one or more statements). */
  query(sql: string): void {
    const at = this.begin(0x51, 3 * sql.length + 1)
    this.cstring(sql)
    this.end(at)
  }

  /** `P`: Parse, with no parameter types (the server infers them). */
  parse(name: string, sql: string): void {
    const at = this.begin(0x50, 3 * (name.length + sql.length) + 4)
    this.cstring(name)
    this.cstring(sql)
    this.int16(0)
    this.end(at)
  }

  /**
   * `B`: Bind. `values` are already serialised: `null`, a string (text format) or a Buffer
   * (binary format). `resultFormats` is `undefined` (all text) or one code per column.
   */
  bind(
    portal: string,
    statement: string,
    values: ReadonlyArray<string | Buffer | null>,
    resultFormats: ReadonlyArray<number> | undefined
  ): void {
    let room = 3 * (portal.length + statement.length) + 8 + values.length * 6
    let binary = false
    for (let i = 0; i < values.length; i++) {
      const v = values[i]
      if (typeof v === "string") room += 3 * v.length
      else if (v !== null) {
        room += v.length
        binary = true
      }
    }
    if (resultFormats !== undefined) room += 2 * resultFormats.length
    const at = this.begin(0x42, room)
    this.cstring(portal)
    this.cstring(statement)
    if (binary) {
      this.int16(values.length)
      for (let i = 0; i < values.length; i++) this.int16(Buffer.isBuffer(values[i]) ? 1 : 0)
    } else {
      this.int16(0)
    }
    this.int16(values.length)
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!
      if (v === null) {
        this.int32(-1)
      } else if (typeof v === "string") {
        const lengthAt = this.off
        this.off += 4
        const n = this.buf.write(v, this.off, "utf8")
        this.buf.writeInt32BE(n, lengthAt)
        this.off += n
      } else {
        this.int32(v.length)
        v.copy(this.buf, this.off)
        this.off += v.length
      }
    }
    if (resultFormats === undefined) {
      this.int16(0)
    } else {
      this.int16(resultFormats.length)
      for (let i = 0; i < resultFormats.length; i++) this.int16(resultFormats[i]!)
    }
    this.end(at)
  }

  /** `D`: Describe a statement (`S`) or a portal (`P`). */
  describe(kind: 0x53 | 0x50, name: string): void {
    const at = this.begin(0x44, 3 * name.length + 2)
    this.byte(kind)
    this.cstring(name)
    this.end(at)
  }

  /** `E`: Execute a portal, at most `maxRows` rows (0: all). */
  execute(portal: string, maxRows: number): void {
    const at = this.begin(0x45, 3 * portal.length + 5)
    this.cstring(portal)
    this.int32(maxRows)
    this.end(at)
  }

  /** `C`: Close a statement (`S`) or a portal (`P`). */
  close(kind: 0x53 | 0x50, name: string): void {
    const at = this.begin(0x43, 3 * name.length + 2)
    this.byte(kind)
    this.cstring(name)
    this.end(at)
  }

  sync(): void {
    this.ensure(5)
    this.byte(0x53)
    this.int32(4)
  }

  flush(): void {
    this.ensure(5)
    this.byte(0x48)
    this.int32(4)
  }

  /** `d`: CopyData, the bytes copied into the slab. */
  copyData(data: Uint8Array): void {
    const at = this.begin(0x64, data.length)
    this.buf.set(data, this.off)
    this.off += data.length
    this.end(at)
  }

  /** `d`: the header of a CopyData of `length` bytes whose body the caller writes itself. */
  copyDataHeader(length: number): void {
    this.ensure(5)
    this.byte(0x64)
    this.int32(length + 4)
  }

  /** `c`: CopyDone. */
  copyDone(): void {
    this.ensure(5)
    this.byte(0x63)
    this.int32(4)
  }

  /** `f`: CopyFail, with the message the server reports in its error. */
  copyFail(message: string): void {
    const at = this.begin(0x66, 3 * message.length + 1)
    this.cstring(message)
    this.end(at)
  }

  terminate(): void {
    this.ensure(5)
    this.byte(0x58)
    this.int32(4)
  }
}

/**
 * The CancelRequest packet: length, code, the backend's pid and its secret key, whatever the
 * key's length (4 bytes in protocol 3.0; up to 256 in 3.2, PostgreSQL 18).
 *
 * @internal
 */
export const cancelRequest = (processId: number, secretKey: Uint8Array): Buffer => {
  const packet = Buffer.allocUnsafe(12 + secretKey.length)
  packet.writeInt32BE(12 + secretKey.length, 0)
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4)
  packet.writeInt32BE(processId, 8)
  packet.set(secretKey, 12)
  return packet
}

/** Receives each backend message as a view on the reader's bytes, valid during the call. @internal */
export type MessageHandler = (type: number, buf: Buffer, start: number, end: number) => void

/**
 * Frames backend messages. Chunks are parsed in place; an incomplete message at a chunk's end
 * is kept, and the chunks that complete it are joined once, when all of it has arrived.
 *
 * @internal
 */
export class Reader {
  private rest: Array<Buffer> = []
  private restLength = 0
  /** Bytes the incomplete message needs in all (5 until its header is known). */
  private need = 0

  constructor(private readonly handler: MessageHandler) {}

  feed(chunk: Buffer): void {
    let buf = chunk
    if (this.restLength > 0) {
      this.rest.push(chunk)
      this.restLength += chunk.length
      if (this.restLength < this.need) return
      buf = Buffer.concat(this.rest, this.restLength)
      this.rest = []
      this.restLength = 0
    }
    let off = 0
    const length = buf.length
    while (length - off >= 5) {
      const size = buf.readInt32BE(off + 1)
      const end = off + 1 + size
      if (end > length) {
        this.need = 1 + size
        break
      }
      this.handler(buf[off]!, buf, off + 5, end)
      off = end
    }
    if (off < length) {
      if (length - off < 5) this.need = 5
      this.rest.push(off === 0 ? buf : buf.subarray(off))
      this.restLength = length - off
    }
  }
}

/** Reads a NUL-terminated string at `at`; returns it and the offset after the NUL. @internal */
export const cstringAt = (buf: Buffer, at: number): [string, number] => {
  const nul = buf.indexOf(0, at)
  const end = nul === -1 ? buf.length : nul
  return [buf.toString("utf8", at, end), end + 1]
}

/** The fields of an ErrorResponse or NoticeResponse, keyed by their one-letter codes. @internal */
export const fieldsOf = (buf: Buffer, start: number, end: number): Record<string, string> => {
  const fields: Record<string, string> = {}
  let at = start
  while (at < end && buf[at] !== 0) {
    const code = String.fromCharCode(buf[at]!)
    const [value, next] = cstringAt(buf, at + 1)
    fields[code] = value
    at = next
  }
  return fields
}

/** A column, as RowDescription gives it (pg's field shape). @internal */
export interface Field {
  readonly name: string
  readonly tableID: number
  readonly columnID: number
  readonly dataTypeID: number
  readonly dataTypeSize: number
  readonly dataTypeModifier: number
  readonly format: "text" | "binary"
}

/** @internal */
export const rowDescription = (buf: Buffer, start: number): Array<Field> => {
  const count = buf.readInt16BE(start)
  const fields = new Array<Field>(count)
  let at = start + 2
  for (let i = 0; i < count; i++) {
    const [name, next] = cstringAt(buf, at)
    at = next
    fields[i] = {
      name,
      tableID: buf.readUInt32BE(at),
      columnID: buf.readInt16BE(at + 4),
      dataTypeID: buf.readUInt32BE(at + 6),
      dataTypeSize: buf.readInt16BE(at + 10),
      dataTypeModifier: buf.readInt32BE(at + 12),
      format: buf.readInt16BE(at + 16) === 0 ? "text" : "binary"
    }
    at += 18
  }
  return fields
}
