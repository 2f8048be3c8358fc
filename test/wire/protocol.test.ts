/**
 * The codec on byte fixtures (no server): frontend messages as the protocol documents them,
 * backend messages framed whatever the chunking, values serialised as `pg` does, and the
 * CancelRequest carrying a secret key of any length (protocol 3.2's variable-length key).
 */
import { assert, describe, it } from "@effect/vitest"
import { md5Password } from "../../packages/pg/src/internal/wire/auth.js"
import { cancelRequest, Reader, Writer } from "../../packages/pg/src/internal/wire/protocol.js"
import { serialize } from "../../packages/pg/src/internal/wire/values.js"

const message = (type: string, body: Buffer): Buffer => {
  const out = Buffer.alloc(5 + body.length)
  out.write(type, 0, "latin1")
  out.writeInt32BE(4 + body.length, 1)
  body.copy(out, 5)
  return out
}

describe("Writer", () => {
  it("encodes Parse / Bind / Describe / Execute / Sync as the protocol says", () => {
    const w = new Writer()
    w.parse("s1", "SELECT $1")
    w.bind("", "s1", ["é", null, Buffer.from([1, 2])], undefined)
    w.describe(0x50, "")
    w.execute("", 0)
    w.sync()
    const out = w.take()!
    const expected = Buffer.concat([
      message("P", Buffer.from("s1\0SELECT $1\0\0\0", "latin1")),
      message(
        "B",
        Buffer.concat([
          Buffer.from("\0s1\0", "latin1"),
          Buffer.from([0, 3, 0, 0, 0, 0, 0, 1]), // three format codes: text, text, binary
          Buffer.from([0, 3]),
          Buffer.from([0, 0, 0, 2]),
          Buffer.from("é", "utf8"),
          Buffer.from([0xff, 0xff, 0xff, 0xff]),
          Buffer.from([0, 0, 0, 2, 1, 2]),
          Buffer.from([0, 0]) // all results as text
        ])
      ),
      message("D", Buffer.from("P\0", "latin1")),
      message("E", Buffer.from([0, 0, 0, 0, 0])),
      message("S", Buffer.alloc(0))
    ])
    assert.deepStrictEqual(out, expected)
    assert.isUndefined(w.take())
  })

  it("a message larger than the slab moves to a new one; earlier takes stay intact", () => {
    const w = new Writer()
    w.query("SELECT 1")
    const first = Buffer.from(w.take()!)
    const big = "x".repeat(100_000)
    w.query(big)
    const second = w.take()!
    assert.strictEqual(second.length, 5 + big.length + 1)
    assert.deepStrictEqual(first, message("Q", Buffer.from("SELECT 1\0")))
  })
})

describe("Reader", () => {
  it("frames messages split at every byte boundary", () => {
    const stream = Buffer.concat([
      message("Z", Buffer.from("I")),
      message("D", Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 3]), Buffer.from("abc")])),
      message("C", Buffer.from("SELECT 1\0"))
    ])
    for (let size = 1; size <= stream.length; size++) {
      const seen: Array<string> = []
      const reader = new Reader((type, buf, start, end) =>
        seen.push(`${String.fromCharCode(type)}:${buf.toString("latin1", start, end)}`)
      )
      for (let at = 0; at < stream.length; at += size) reader.feed(stream.subarray(at, at + size))
      assert.deepStrictEqual(seen, ["Z:I", "D:\0\u0001\0\0\0\u0003abc", "C:SELECT 1\0"], `chunks of ${size}`)
    }
  })
})

describe("CancelRequest", () => {
  it("carries the key whatever its length: 4 bytes (3.0) or 32 (3.2)", () => {
    for (const length of [4, 32, 256]) {
      const key = Buffer.alloc(length, 0xab)
      const packet = cancelRequest(77, key)
      assert.strictEqual(packet.length, 12 + length)
      assert.strictEqual(packet.readInt32BE(0), 12 + length)
      assert.strictEqual(packet.readInt32BE(4), 80877102)
      assert.strictEqual(packet.readInt32BE(8), 77)
      assert.deepStrictEqual(packet.subarray(12), key)
    }
  })
})

describe("values as pg sends them", () => {
  it("null, text, binary, dates, arrays, JSON, toPostgres", () => {
    assert.isNull(serialize(undefined))
    assert.isNull(serialize(null))
    assert.strictEqual(serialize(42), "42")
    assert.strictEqual(serialize(true), "true")
    assert.strictEqual(serialize(10n), "10")
    assert.deepStrictEqual(serialize(Buffer.from([1])), Buffer.from([1]))
    assert.deepStrictEqual(serialize(new Uint8Array([2, 3])), Buffer.from([2, 3]))
    assert.strictEqual(serialize([1, null, "a\"b", [2]]), "{\"1\",NULL,\"a\\\"b\",{\"2\"}}")
    assert.strictEqual(serialize({ a: 1 }), "{\"a\":1}")
    assert.strictEqual(serialize({ toPostgres: () => "custom" }), "custom")
    const date = new Date(2024, 0, 2, 3, 4, 5, 6)
    assert.match(serialize(date) as string, /^2024-01-02T03:04:05\.006[+-]\d\d:\d\d$/)
    const circular: Record<string, unknown> = {}
    circular.self = circular
    assert.throws(() => serialize(circular))
  })

  it("md5 is md5 + md5(md5(password + user) + salt)", () => {
    // the fixture computed independently (Python's hashlib)
    assert.strictEqual(md5Password("user", "pw", Buffer.from([1, 2, 3, 4])), "md546eacb7412409e1444bde22e56e70744")
  })
})
