import { assert, describe, it } from "@effect/vitest"
import {
  classifyConnectError,
  isFatal,
  isFatalSeverity,
  isQueryCanceled
} from "../../packages/pg/src/internal/sqlstate.js"
import { cancelRequest } from "../../packages/pg/src/internal/wire/protocol.js"

describe("sqlstate", () => {
  it("isFatal covers class 08 and 57P01..57P03, not a cancel or a constraint", () => {
    for (const code of ["08000", "08006", "08P01", "57P01", "57P02", "57P03"]) assert.isTrue(isFatal(code), code)
    for (const code of ["57014", "23505", "40001", "25P02", undefined]) assert.isFalse(isFatal(code), String(code))
    assert.isTrue(isQueryCanceled("57014"))
    assert.isFalse(isQueryCanceled("57P01"))
    assert.isTrue(isFatalSeverity("FATAL"))
    assert.isFalse(isFatalSeverity("ERROR"))
  })

  it("classifyConnectError reads SQLSTATEs, Node codes and pg's plain messages", () => {
    const cases: ReadonlyArray<readonly [string | undefined, string | undefined, string]> = [
      ["28P01", "password authentication failed", "Authentication"],
      ["28000", "no pg_hba.conf entry", "Authentication"],
      ["3D000", "database does not exist", "UnknownDatabase"],
      ["53300", "too many clients", "TooManyConnections"],
      ["08P01", "protocol violation", "Protocol"],
      ["57P03", "the database system is starting up", "Unreachable"],
      ["ECONNREFUSED", "connect ECONNREFUSED", "Unreachable"],
      ["ENOTFOUND", "getaddrinfo ENOTFOUND", "Unreachable"],
      ["EHOSTUNREACH", undefined, "Unreachable"],
      ["ETIMEDOUT", undefined, "Timeout"],
      ["DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate", "Tls"],
      ["ERR_TLS_CERT_ALTNAME_INVALID", undefined, "Tls"],
      [undefined, "The server does not support SSL connections", "Tls"],
      [undefined, "SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string", "Authentication"],
      [undefined, "Connection terminated unexpectedly", "Unreachable"],
      [undefined, "something else", "Protocol"]
    ]
    for (const [code, message, reason] of cases) {
      assert.strictEqual(classifyConnectError(code, message), reason, `${code} ${message}`)
    }
  })

  it("the CancelRequest is length 16, code 80877102, pid, the 4-byte key as the server gave it", () => {
    const key = Buffer.alloc(4)
    key.writeInt32BE(-123456789)
    const packet = cancelRequest(4242, key)
    assert.strictEqual(packet.length, 16)
    assert.strictEqual(packet.readInt32BE(0), 16)
    assert.strictEqual(packet.readInt32BE(4), 80877102)
    assert.strictEqual(packet.readInt32BE(8), 4242)
    assert.strictEqual(packet.readInt32BE(12), -123456789)
  })
})
