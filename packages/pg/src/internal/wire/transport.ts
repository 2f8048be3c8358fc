/**
 * Opens the byte stream to a server: TCP (with keepalive and no Nagle), a Unix socket (a host
 * starting with `/`), or a user-supplied duplex stream; then, per libpq's `sslmode`, an
 * SSLRequest and TLS on top. Used for the connection itself and for each cancel's side socket,
 * so that both reach the server the same way and pass the same certificate checks.
 *
 * @internal
 */
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as Tls from "node:tls"
import { WireError } from "./errors.js"

/**
 * libpq's `sslmode`: `disable` never uses TLS; `allow` tries without TLS first, then with;
 * `prefer` tries TLS first and goes on without it if the server has none (or the handshake
 * fails); `require` uses TLS without checking the certificate; `verify-ca` checks the chain;
 * `verify-full` checks the chain and that the certificate names the host.
 *
 * @internal
 */
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"

/** Where and how to reach the server. @internal */
export interface Endpoint {
  readonly host: string
  readonly port: number
  readonly sslmode: SslMode
  /** Extra node TLS options (certificate authority, client certificate, …). */
  readonly tls: Tls.ConnectionOptions | undefined
  readonly keepAlive: boolean
  readonly keepAliveInitialDelayMillis: number
  /** Replaces the socket: called once per connection and once per cancel. */
  readonly stream: (() => Duplex) | undefined
}

/** Why opening failed, for the connect error's classification. @internal */
export class TransportError extends WireError {
  override readonly name = "TransportError"
  constructor(message: string, readonly code: string | undefined) {
    super(message)
  }
}

/** What `open` hands over: the stream and whether it is encrypted. @internal */
export interface Opened {
  readonly stream: Duplex
  readonly tls: boolean
}

/** A user stream that connects like a `net.Socket` (as `pg` expects of its `stream` option). */
interface SocketLike {
  readonly connecting?: boolean
  readonly pending?: boolean
  connect?: (port: number, host: string) => unknown
  setNoDelay?: (noDelay: boolean) => unknown
  setKeepAlive?: (enable: boolean, initialDelay: number) => unknown
}

/** Whether a user stream is connected already, so that no "connect" event is to be awaited. */
const isConnected = (stream: Duplex): boolean => {
  const like = stream as SocketLike
  return typeof like.connect !== "function" || (like.connecting !== true && like.pending === false)
}

/**
 * The underlying stream, before TLS. A user stream is used as `pg` uses its `stream` option:
 * an unconnected socket-like stream gets `connect(port, host)` (then its "connect" event is
 * awaited), and `setNoDelay`/`setKeepAlive` where present; one that is connecting already is
 * awaited, and one that is connected (or has no `connect`) is used as it is.
 */
const raw = (endpoint: Endpoint, side: boolean): Duplex => {
  if (endpoint.stream !== undefined) {
    const stream = endpoint.stream()
    const like = stream as SocketLike
    like.setNoDelay?.(true)
    if (endpoint.keepAlive && !side) like.setKeepAlive?.(true, endpoint.keepAliveInitialDelayMillis)
    if (typeof like.connect === "function" && like.connecting !== true && like.pending !== false) {
      like.connect(endpoint.port, endpoint.host)
    }
    return stream
  }
  const socket = endpoint.host.startsWith("/")
    ? Net.connect(`${endpoint.host}/.s.PGSQL.${endpoint.port}`)
    : Net.connect(endpoint.port, endpoint.host)
  socket.setNoDelay(true)
  if (endpoint.keepAlive && !side) socket.setKeepAlive(true, endpoint.keepAliveInitialDelayMillis)
  return socket
}

/** Whether `sslmode` starts with an SSLRequest. @internal */
export const startsWithTls = (mode: SslMode): boolean =>
  mode === "prefer" || mode === "require" || mode === "verify-ca" || mode === "verify-full"

const tlsOptions = (endpoint: Endpoint, socket: Duplex): Tls.ConnectionOptions => {
  const options: Tls.ConnectionOptions = { ...endpoint.tls, socket }
  const host = endpoint.host
  if (!host.startsWith("/")) {
    options.host ??= host
    if (Net.isIP(host) === 0) options.servername ??= host
  }
  switch (endpoint.sslmode) {
    case "verify-full":
      options.rejectUnauthorized = true
      break
    case "verify-ca":
      options.rejectUnauthorized = true
      options.checkServerIdentity = () => undefined
      break
    default:
      // prefer / require: encrypted, certificate unchecked (libpq's behaviour without a root cert)
      options.rejectUnauthorized = endpoint.tls?.rejectUnauthorized ?? false
  }
  return options
}

/**
 * Opens the stream; with `tls` true, negotiates TLS first (SSLRequest). Calls back once, with
 * the stream ready for the startup message, or with an error (the stream is destroyed). The
 * returned function aborts (destroys whatever is open); after the callback it does nothing.
 *
 * @internal
 */
export const open = (
  endpoint: Endpoint,
  tls: boolean,
  side: boolean,
  callback: (error: TransportError | undefined, opened?: Opened) => void
): () => void => {
  let done = false
  let current: Duplex
  const finish = (error: TransportError | undefined, opened?: Opened) => {
    if (done) return
    done = true
    if (error !== undefined) current.destroy()
    callback(error, opened)
  }
  const onError = (error: Error & { code?: string }) =>
    finish(
      // The socket's own error adds nothing but a stack into Node's internals: its message and code are kept.
      new TransportError(
        error.message,
        error.code ?? (current instanceof Tls.TLSSocket ? "ERR_TLS_HANDSHAKE" : undefined)
      )
    )
  const onClose = () =>
    finish(new TransportError("the server closed the connection during TLS negotiation", "ECONNRESET"))

  const socket = raw(endpoint, side)
  current = socket
  socket.on("error", onError)
  const connected = () => {
    if (!tls) {
      socket.off("error", onError)
      return finish(undefined, { stream: socket, tls: false })
    }
    socket.on("close", onClose)
    const request = Buffer.allocUnsafe(8)
    request.writeInt32BE(8, 0)
    request.writeInt32BE(80877103, 4)
    socket.write(request)
    const onAnswer = (chunk: Buffer) => {
      socket.off("data", onAnswer)
      socket.pause()
      const answer = chunk[0]
      if (chunk.length > 1) {
        return finish(new TransportError("the server sent data before the TLS handshake", "EPROTO"))
      }
      if (answer === 0x4e /* N */) {
        if (endpoint.sslmode === "prefer" && !side) {
          socket.off("close", onClose)
          socket.off("error", onError)
          return finish(undefined, { stream: socket, tls: false })
        }
        return finish(
          new TransportError(
            "the server does not support SSL (it answered N to SSLRequest)",
            "ERR_SSL_NOT_SUPPORTED_BY_SERVER"
          )
        )
      }
      if (answer !== 0x53 /* S */) {
        return finish(new TransportError("the server answered SSLRequest with something unexpected", "EPROTO"))
      }
      socket.off("close", onClose)
      socket.off("error", onError)
      const secure = Tls.connect(tlsOptions(endpoint, socket))
      current = secure
      secure.on("error", onError)
      secure.once("secureConnect", () => {
        secure.off("error", onError)
        finish(undefined, { stream: secure, tls: true })
      })
    }
    socket.on("data", onAnswer)
  }
  if (endpoint.stream !== undefined && isConnected(socket)) {
    // A user stream given connected is taken as connected.
    queueMicrotask(connected)
  } else {
    socket.once("connect", connected)
  }
  return () => finish(new TransportError("aborted", "ABORTED"))
}
