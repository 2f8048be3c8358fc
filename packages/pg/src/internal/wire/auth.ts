/**
 * Password authentication: MD5 (`md5` + md5(md5(password + user) + salt)) and SCRAM-SHA-256
 * (RFC 5802/7677, without channel binding: `n,,`). The password is read from its getter only
 * when the server asks, and never kept or put in an error.
 *
 * @internal
 */
import * as Crypto from "node:crypto"
import { WireError } from "./errors.js"

/** @internal */
export const md5Password = (user: string, password: string, salt: Buffer): string => {
  const inner = Crypto.createHash("md5").update(password + user, "utf8").digest("hex")
  return "md5" + Crypto.createHash("md5").update(inner, "utf8").update(salt).digest("hex")
}

/** An authentication failure on our side (the server's own answer is an ErrorResponse). @internal */
export class AuthError extends WireError {
  override readonly name = "AuthError"
  readonly code = "28000"
}

/** One SCRAM-SHA-256 exchange. @internal */
export class Scram {
  private readonly clientNonce = Crypto.randomBytes(18).toString("base64")
  private readonly clientFirstBare = `n=*,r=${this.clientNonce}`
  private serverSignature: Buffer | undefined

  constructor(private readonly password: string) {}

  /** SASLInitialResponse data. */
  initial(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`, "utf8")
  }

  /** From server-first to client-final (PBKDF2 runs off the event loop). */
  continue(serverFirstData: Buffer, callback: (error: Error | undefined, clientFinal?: Buffer) => void): void {
    const serverFirst = serverFirstData.toString("utf8")
    const attributes = parseAttributes(serverFirst)
    const nonce = attributes.get("r")
    const salt = attributes.get("s")
    const iterations = Number(attributes.get("i"))
    if (nonce === undefined || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      return callback(new AuthError("SCRAM-SHA-256: the server's nonce does not extend ours"))
    }
    if (salt === undefined || !Number.isInteger(iterations) || iterations <= 0) {
      return callback(new AuthError("SCRAM-SHA-256: the server's first message has no salt or iteration count"))
    }
    Crypto.pbkdf2(
      this.password.normalize("NFKC"),
      Buffer.from(salt, "base64"),
      iterations,
      32,
      "sha256",
      (e, salted) => {
        if (e) return callback(new AuthError("SCRAM-SHA-256: key derivation failed"))
        const clientKey = hmac(salted, "Client Key")
        const storedKey = Crypto.createHash("sha256").update(clientKey).digest()
        const withoutProof = `c=biws,r=${nonce}`
        const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`
        const signature = hmac(storedKey, authMessage)
        const proof = Buffer.alloc(clientKey.length)
        for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!
        this.serverSignature = hmac(hmac(salted, "Server Key"), authMessage)
        callback(undefined, Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8"))
      }
    )
  }

  /** Checks the server's signature in server-final: the server, too, knew the password. */
  final(serverFinalData: Buffer): Error | undefined {
    const attributes = parseAttributes(serverFinalData.toString("utf8"))
    const error = attributes.get("e")
    if (error !== undefined) return new AuthError(`SCRAM-SHA-256: the server refused: ${error}`)
    const verifier = attributes.get("v")
    const got = verifier === undefined ? undefined : Buffer.from(verifier, "base64")
    const expected = this.serverSignature
    if (
      got === undefined || expected === undefined || got.length !== expected.length ||
      !Crypto.timingSafeEqual(got, expected)
    ) {
      return new AuthError("SCRAM-SHA-256: the server's signature does not match")
    }
    return undefined
  }
}

const hmac = (key: Buffer, text: string): Buffer => Crypto.createHmac("sha256", key).update(text, "utf8").digest()

const parseAttributes = (text: string): Map<string, string> => {
  const out = new Map<string, string>()
  for (const part of text.split(",")) {
    const eq = part.indexOf("=")
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1))
  }
  return out
}
