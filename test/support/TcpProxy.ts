/**
 * A TCP proxy on loopback for network-fault tests: it listens on 127.0.0.1 (a free port) and
 * forwards every connection to a target server. Each connection has a mode, switchable at
 * runtime for the connections already open, for those accepted later, or for both:
 *
 * - `pass`: forward both directions as they come.
 * - `blackhole`: forward nothing in either direction and keep the sockets open, as a network
 *   that silently drops every packet. A new connection in this mode is accepted but never
 *   connected to the target; an existing one keeps its target socket open (the server does
 *   not learn that the client went away, as on a real dropped link) until `close`.
 * - `{ latency }`: delay each chunk by that many milliseconds (order kept), and the server's
 *   close of the connection too (after the last chunk).
 * - `{ resetAfterBytes }`: forward that many more bytes from the server, then reset both
 *   sides (RST to the client, destroy the target socket), as a link that breaks mid-result.
 *
 * Nothing here is an Effect so that it can be used from any test; `close` ends every socket
 * and timer, so that no handle is left open.
 */
import * as Net from "node:net"

/** How a connection forwards its bytes. */
export type ProxyMode =
  | "pass"
  | "blackhole"
  | { readonly latency: number }
  | { readonly resetAfterBytes: number }

/** Which connections a mode change applies to. */
export type ProxyTarget = "all" | "existing" | "new"

/** A running proxy. */
export interface TcpProxy {
  readonly host: string
  readonly port: number
  /** Sets the mode of the open connections, of connections accepted from now on, or both. */
  readonly setMode: (mode: ProxyMode, target?: ProxyTarget) => void
  /** Connections accepted so far. */
  readonly accepted: () => number
  /** Client-side sockets still open (the proxy's end of connections from the client). */
  readonly openConnections: () => number
  /** Connections reset by a `resetAfterBytes` mode. */
  readonly resets: () => number
  /**
   * Resolves once no client-side socket is open (on the socket events, no polling); rejects
   * with the count still open after `withinMillis`.
   */
  readonly idle: (withinMillis: number) => Promise<void>
  /** Stops listening and destroys every socket and timer; idempotent. */
  readonly close: () => Promise<void>
}

interface Link {
  readonly client: Net.Socket
  upstream: Net.Socket | undefined
  mode: ProxyMode
  /** Bytes from the server still allowed through in `resetAfterBytes` mode. */
  budget: number
  /** When the last delayed chunk of each direction is due, so that order is kept. */
  dueToClient: number
  dueToServer: number
  readonly timers: Set<NodeJS.Timeout>
}

/** Starts a proxy to `target` on a free loopback port. */
export const start = (target: { readonly host: string; readonly port: number }): Promise<TcpProxy> =>
  new Promise((resolve, reject) => {
    const links = new Set<Link>()
    let newMode: ProxyMode = "pass"
    let accepted = 0
    let resets = 0
    let closed = false
    const idleWaiters = new Set<() => void>()
    const open = () => [...links].filter((link) => !link.client.destroyed).length
    const notify = () => {
      if (open() > 0) return
      for (const waiter of [...idleWaiters]) waiter()
    }

    const teardown = (link: Link, reset: boolean) => {
      for (const timer of link.timers) clearTimeout(timer)
      link.timers.clear()
      if (reset && !link.client.destroyed) link.client.resetAndDestroy()
      else link.client.destroy()
      link.upstream?.destroy()
      links.delete(link)
      notify()
    }

    const connectUpstream = (link: Link) => {
      const upstream = Net.connect(target.port, target.host)
      link.upstream = upstream
      upstream.setNoDelay(true)
      upstream.on("data", (chunk: Buffer) => forward(link, chunk, "toClient"))
      // The target went away (or refused): the client sees its connection closed, unless the
      // link is blackholed, where nothing gets through, not even the close.
      upstream.on("error", () => {
        if (link.mode !== "blackhole") teardown(link, false)
      })
      upstream.on("close", () => {
        if (link.mode === "blackhole") return
        // With latency, the close travels like the data: after the last chunk, and delayed.
        const latency = typeof link.mode === "object" && "latency" in link.mode ? link.mode.latency : 0
        const due = Math.max(Date.now() + latency, link.dueToClient)
        if (latency === 0 && due <= Date.now()) return teardown(link, false)
        const timer = setTimeout(() => {
          link.timers.delete(timer)
          teardown(link, false)
        }, due - Date.now())
        link.timers.add(timer)
      })
    }

    const deliver = (link: Link, chunk: Buffer, direction: "toClient" | "toServer") => {
      const socket = direction === "toClient" ? link.client : link.upstream
      if (socket !== undefined && !socket.destroyed) socket.write(chunk)
    }

    const forward = (link: Link, chunk: Buffer, direction: "toClient" | "toServer") => {
      const mode = link.mode
      if (mode === "blackhole") return
      if (typeof mode === "object" && "resetAfterBytes" in mode && direction === "toClient") {
        if (chunk.length >= link.budget) {
          if (link.budget > 0) deliver(link, chunk.subarray(0, link.budget), direction)
          link.budget = 0
          resets++
          // Let the partial chunk reach the client before the reset.
          setImmediate(() => teardown(link, true))
          link.mode = "blackhole"
          return
        }
        link.budget -= chunk.length
      }
      const latency = typeof mode === "object" && "latency" in mode ? mode.latency : 0
      const now = Date.now()
      const pending = direction === "toClient" ? link.dueToClient : link.dueToServer
      if (latency === 0 && pending <= now) return deliver(link, chunk, direction)
      const due = Math.max(now + latency, pending)
      if (direction === "toClient") link.dueToClient = due
      else link.dueToServer = due
      const timer = setTimeout(() => {
        link.timers.delete(timer)
        if (link.mode !== "blackhole") deliver(link, chunk, direction)
      }, due - now)
      link.timers.add(timer)
    }

    const applyMode = (link: Link, mode: ProxyMode) => {
      link.mode = mode
      if (typeof mode === "object" && "resetAfterBytes" in mode) link.budget = mode.resetAfterBytes
    }

    const server = Net.createServer((client) => {
      accepted++
      if (closed) {
        client.destroy()
        return
      }
      client.setNoDelay(true)
      const link: Link = {
        client,
        upstream: undefined,
        mode: "pass",
        budget: 0,
        dueToClient: 0,
        dueToServer: 0,
        timers: new Set()
      }
      applyMode(link, newMode)
      links.add(link)
      client.on("data", (chunk: Buffer) => forward(link, chunk, "toServer"))
      client.on("error", () => teardown(link, false))
      client.on("close", () => {
        // On a blackholed link the server must not learn that the client left: keep the
        // target socket open (close ends it). Otherwise pass the close on.
        if (link.mode === "blackhole") {
          for (const timer of link.timers) clearTimeout(timer)
          link.timers.clear()
          client.destroy()
          if (link.upstream === undefined) links.delete(link)
          notify()
          return
        }
        teardown(link, false)
      })
      if (link.mode !== "blackhole") connectUpstream(link)
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      resolve({
        host: "127.0.0.1",
        port: address.port,
        setMode: (mode, which = "all") => {
          if (which !== "existing") newMode = mode
          if (which !== "new") { for (const link of links) applyMode(link, mode) }
        },
        accepted: () => accepted,
        openConnections: open,
        resets: () => resets,
        idle: (withinMillis) =>
          new Promise<void>((done, fail) => {
            if (open() === 0) return done()
            const finish = () => {
              clearTimeout(timer)
              idleWaiters.delete(finish)
              done()
            }
            const timer = setTimeout(() => {
              idleWaiters.delete(finish)
              fail(new Error(`${open()} proxied connection(s) still open after ${withinMillis} ms`))
            }, withinMillis)
            idleWaiters.add(finish)
          }),
        close: () =>
          new Promise<void>((done) => {
            if (closed) return done()
            closed = true
            for (const link of [...links]) teardown(link, false)
            server.close(() => done())
          })
      })
    })
  })
