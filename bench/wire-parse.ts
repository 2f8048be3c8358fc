/**
 * Parse cost of a result, measured before choosing the codec (issue 12 line 1): the same bytes —
 * RowDescription, 100 DataRows of 3 text columns (int4, text, timestamptz, as `rows100-c10`),
 * CommandComplete, ReadyForQuery — parsed
 *
 * - by `pg-protocol` 1.16 (brianc's parser, what `pg` uses), then turned into row objects the
 *   way `pg`'s Result does (a parser per column from pg-types, one object per row);
 * - by our `Reader` with the connection's row decoding (the same pg-types parsers).
 *
 * Framing alone is reported too (pg-protocol's messages vs our views). In-process, no server,
 * a few seconds: `pnpm tsx bench/wire-parse.ts`.
 */
import { createRequire } from "node:module"
import * as Path from "node:path"
import { Reader, rowDescription } from "../packages/pg/src/internal/wire/protocol.js"
import { defaultTypes } from "../packages/pg/src/internal/wire/values.js"

const require = createRequire(import.meta.url)
const pgDir = Path.dirname(require.resolve("pg/package.json"))
// pg-protocol is pg's own dependency: resolved from pg's folder, its parser loaded directly.
const protocolMain = require.resolve("pg-protocol", { paths: [pgDir] })
const pgProtocol = require(Path.join(Path.dirname(protocolMain), "parser.js")) as {
  readonly Parser: new() => { parse(buffer: Buffer, callback: (message: any) => void): void }
}

const message = (type: string, body: Buffer): Buffer => {
  const out = Buffer.alloc(5 + body.length)
  out.write(type, 0, "latin1")
  out.writeInt32BE(4 + body.length, 1)
  body.copy(out, 5)
  return out
}

const field = (name: string, oid: number): Buffer => {
  const out = Buffer.alloc(name.length + 1 + 18)
  out.write(name, 0, "latin1")
  out.writeUInt32BE(0, name.length + 1)
  out.writeInt16BE(0, name.length + 5)
  out.writeUInt32BE(oid, name.length + 7)
  out.writeInt16BE(-1, name.length + 11)
  out.writeInt32BE(-1, name.length + 13)
  out.writeInt16BE(0, name.length + 17)
  return out
}

const columns = Buffer.concat([Buffer.from([0, 3]), field("g", 23), field("text", 25), field("now", 1184)])
const rows: Array<Buffer> = []
for (let g = 1; g <= 100; g++) {
  const values = [String(g), String(g), "2026-12-01 10:00:00.123456+00"]
  const parts: Array<Buffer> = [Buffer.from([0, 3])]
  for (const v of values) {
    const length = Buffer.alloc(4)
    length.writeInt32BE(Buffer.byteLength(v))
    parts.push(length, Buffer.from(v))
  }
  rows.push(message("D", Buffer.concat(parts)))
}
const result = Buffer.concat([
  message("T", columns),
  ...rows,
  message("C", Buffer.from("SELECT 100\0")),
  message("Z", Buffer.from("I"))
])

const measure = (name: string, run: () => void): number => {
  for (let i = 0; i < 2_000; i++) run() // warm-up
  const rounds = 20_000
  const start = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) run()
  const ns = Number(process.hrtime.bigint() - start) / rounds
  process.stdout.write(`${name.padEnd(48)} ${(ns / 1000).toFixed(2).padStart(7)} µs per 100-row result\n`)
  return ns
}

// pg-protocol framing only
const pgParser = new pgProtocol.Parser()
let messages = 0
const pgFrame = measure("pg-protocol: framing + field strings", () => {
  pgParser.parse(result, () => {
    messages++
  })
})

// pg-protocol + pg's row building
const pgRows = measure("pg-protocol + pg's row objects (pg-types)", () => {
  let parsers: Array<(v: string) => unknown> = []
  let names: Array<string> = []
  const out: Array<Record<string, unknown>> = []
  pgParser.parse(result, (msg) => {
    if (msg.name === "rowDescription") {
      names = msg.fields.map((f: { name: string }) => f.name)
      parsers = msg.fields.map((f: { dataTypeID: number }) => defaultTypes.getTypeParser(f.dataTypeID, "text"))
    } else if (msg.name === "dataRow") {
      const row: Record<string, unknown> = {}
      for (let i = 0; i < msg.fields.length; i++) {
        const v = msg.fields[i]
        row[names[i]!] = v === null ? null : parsers[i]!(v)
      }
      out.push(row)
    }
  })
})

// our framing only
const ourFrame = measure("ours: framing (views, no message objects)", () => {
  const reader = new Reader(() => {
    messages++
  })
  reader.feed(result)
})

// our framing + row decoding, as the connection does it
const ourRows = measure("ours: framing + row objects (pg-types)", () => {
  let parsers: Array<(v: string) => unknown> = []
  let names: Array<string> = []
  const out: Array<Record<string, unknown>> = []
  const reader = new Reader((type, buf, start) => {
    if (type === 0x54) {
      const fields = rowDescription(buf, start)
      names = fields.map((f) => f.name)
      parsers = fields.map((f) => defaultTypes.getTypeParser(f.dataTypeID, "text"))
    } else if (type === 0x44) {
      const n = buf.readInt16BE(start)
      let at = start + 2
      const row: Record<string, unknown> = {}
      for (let i = 0; i < n; i++) {
        const length = buf.readInt32BE(at)
        at += 4
        if (length === -1) row[names[i]!] = null
        else {
          row[names[i]!] = parsers[i]!(buf.toString("utf8", at, at + length))
          at += length
        }
      }
      out.push(row)
    }
  })
  reader.feed(result)
})

process.stdout.write(
  `\n(${messages} messages framed)\nframing: ours ${(pgFrame / ourFrame).toFixed(2)}× faster; with rows: ${
    (pgRows / ourRows).toFixed(2)
  }× ` +
    `(rows are ${((ourRows - ourFrame) / ourRows * 100).toFixed(0)} % of our total: pg-types' parsers dominate)\n`
)
