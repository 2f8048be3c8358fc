/**
 * PostgreSQL CancelRequest on a new side socket (protocol 3.0, which is what `pg` 8 speaks:
 * the secret key is one int32). The request never goes through a pooled connection, so it
 * needs no free slot.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import * as Tls from "node:tls"

/** @internal */
export interface CancelTarget {
  readonly host: string
  readonly port: number
  /** `false`, `true` or node TLS options, as given for the connection itself. */
  readonly ssl: boolean | Tls.ConnectionOptions
  readonly processId: number
  readonly secretKey: number
}

const CANCEL_REQUEST_CODE = 80877102
const SSL_REQUEST_CODE = 80877103

/** @internal */
export const cancelPacket = (processId: number, secretKey: number): Buffer => {
  const packet = Buffer.allocUnsafe(16)
  packet.writeInt32BE(16, 0)
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4)
  packet.writeInt32BE(processId, 8)
  // pg-protocol reads the key with readInt32BE: write it back the same (signed) way.
  packet.writeInt32BE(secretKey, 12)
  return packet
}

const sslRequestPacket = (): Buffer => {
  const packet = Buffer.allocUnsafe(8)
  packet.writeInt32BE(8, 0)
  packet.writeInt32BE(SSL_REQUEST_CODE, 4)
  return packet
}

/**
 * Sends the CancelRequest and waits for the server to close the side socket, which it does
 * once it has signalled the backend. Waiting for that close matters: a cancel signal still
 * on its way could otherwise hit the next statement on the connection. Resolves `true` when
 * the server closed the socket within `timeout`, `false` otherwise (any error included);
 * never fails, and always destroys the socket.
 *
 * @internal
 */
export const sendCancelRequest = (target: CancelTarget, timeout: Duration.Duration): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    let done = false
    let socket: Net.Socket
    const finish = (ok: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    const timer = setTimeout(() => finish(false), Duration.toMillis(timeout))
    const packet = cancelPacket(target.processId, target.secretKey)
    const plain = target.host.startsWith("/")
      ? Net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : Net.connect(target.port, target.host)
    socket = plain
    plain.setNoDelay(true)
    plain.on("error", () => finish(false))
    plain.on("close", () => finish(true))
    plain.once("connect", () => {
      if (target.ssl === false) {
        plain.write(packet)
        return
      }
      plain.write(sslRequestPacket())
      plain.once("data", (answer: Buffer) => {
        if (answer.length !== 1 || answer[0] !== 0x53 /* 'S' */) {
          // The server refuses TLS: do not send the key in clear text over a link meant to be encrypted.
          return finish(false)
        }
        plain.removeAllListeners("close")
        // Same TLS options as the connection itself, so the same certificate checks apply.
        const options: Tls.ConnectionOptions = target.ssl === true
          ? { socket: plain, host: target.host }
          : { ...target.ssl, socket: plain, host: target.host }
        if (Net.isIP(target.host) === 0 && options.servername === undefined) options.servername = target.host
        const secure = Tls.connect(options)
        socket = secure
        secure.on("error", () => finish(false))
        secure.on("close", () => finish(true))
        secure.once("secureConnect", () => secure.write(packet))
      })
    })
    return Effect.sync(() => finish(false))
  })
