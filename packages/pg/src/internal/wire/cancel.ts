/**
 * A CancelRequest on a side socket: opened like the connection itself (same transport, TLS if
 * the connection has it, same certificate checks), the packet written, then the wait for the
 * server to close the socket — which it does once it has signalled the backend. The key is
 * whatever BackendKeyData gave, of any length (4 bytes in protocol 3.0, up to 256 in 3.2).
 *
 * @internal
 */
import { cancelRequest } from "./protocol.js"
import { type Endpoint, open } from "./transport.js"

/** One cancel in flight. @internal */
export interface CancelHandle {
  /** The packet has been handed to the side socket: the server may act on it. */
  readonly written: boolean
  /** The server closed the side socket (it has signalled the backend), or the cancel failed. */
  readonly settled: boolean
  /** Stops the cancel; returns `true` when nothing was written, so no signal can arrive. */
  readonly abort: () => boolean
}

/**
 * Sends the CancelRequest; `callback(true)` once the server closed the side socket after the
 * packet was written, `callback(false)` on any failure. Never throws; the side socket is
 * always destroyed at the end.
 *
 * @internal
 */
export const sendCancel = (
  endpoint: Endpoint,
  tls: boolean,
  processId: number,
  secretKey: Uint8Array,
  callback: (confirmed: boolean) => void
): CancelHandle => {
  let written = false
  let settled = false
  let destroy: (() => void) | undefined
  const settle = (confirmed: boolean) => {
    if (settled) return
    settled = true
    destroy?.()
    callback(confirmed)
  }
  const abortOpen = open(endpoint, tls, true, (error, opened) => {
    if (error !== undefined || opened === undefined) return settle(false)
    const stream = opened.stream
    destroy = () => stream.destroy()
    if (settled) return destroy()
    stream.on("error", () => settle(written))
    stream.on("close", () => settle(written))
    // The server answers nothing: any data is ignored, the close is the confirmation.
    stream.on("data", () => undefined)
    stream.resume()
    written = true
    stream.write(cancelRequest(processId, secretKey))
  })
  return {
    get written() {
      return written
    },
    get settled() {
      return settled
    },
    abort: () => {
      if (!settled) {
        abortOpen()
        settle(false)
      }
      return !written
    }
  }
}
