/**
 * One PostgreSQL session as an explicit state machine (see README.md in this folder).
 *
 * States: `connecting → idle ⇄ busy ⇄ cancelling → closing → dead`, and the two COPY states
 * `busy ⇄ copyIn` (the server waits for our CopyData) and `busy ⇄ copyOut` (the server sends
 * CopyData). Every change goes through
 * `transition`, which also settles whatever the new state forbids: entering `closing` or `dead`
 * fails every statement queued or in flight at once. A statement is accepted only in `idle`,
 * `busy`, `copyIn`, `copyOut` and `cancelling`; it is written only in `idle` and `busy`.
 *
 * Statements queue in `queue` (not yet written) and `inflight` (written, answered in order; the
 * first is the head, the one the server runs). Writes are gathered and flushed once per
 * microtask, one Sync per statement so that an error stays with its statement.
 *
 * Cancel is exact:
 * - a statement cancelled before it was written is dropped, never sent;
 * - one written but not yet at the head is cancelled when it becomes the head;
 * - at the head, a CancelRequest goes on a side socket and the connection enters `cancelling`:
 *   nothing more is written, and the statement is settled only once its ReadyForQuery has been
 *   read and no cancel signal can still arrive: every side socket whose packet was written has
 *   been closed by the server, which it does after signalling the backend. A 57014 is no such
 *   proof: the server signals the backend's pid and then its process group, and the second
 *   signal can land after the backend reported the first (seen under load: it cancelled the
 *   next transaction's statement). Past `cancelTimeout`, the connection is destroyed instead;
 * - a statement that fails with 57014 that nobody asked for, while a cancel of ours may have
 *   reached it (a late signal), is re-run when it ran outside a transaction block (its
 *   implicit transaction was rolled back); inside one, it fails and the connection is retired.
 *
 * @internal
 */
import type { Duplex } from "node:stream"
import { AuthError, md5Password, Scram } from "./auth.js"
import { type CancelHandle, sendCancel } from "./cancel.js"
import { binaryDecoder, binaryOk, binaryPays, type Decoder, textDecoder } from "./decode.js"
import {
  ClientError,
  ConnectionLost,
  type LostReason,
  NotSent,
  type Outcome,
  QueryTimeout,
  ServerError
} from "./errors.js"
import {
  Backend,
  cstringAt,
  type Field,
  PROTOCOL_3_0,
  PROTOCOL_3_2,
  Reader,
  rowDescription,
  Writer
} from "./protocol.js"
import { type Endpoint, open, startsWithTls, TransportError } from "./transport.js"
import { defaultTypes, serializeAll, type TypeParsers } from "./values.js"

/** @internal */
export type ConnectionState =
  | "connecting"
  | "idle"
  | "busy"
  | "copyIn"
  | "copyOut"
  | "cancelling"
  | "closing"
  | "dead"

/** The session's transaction status as of the last ReadyForQuery. @internal */
export type TxStatus = 0x49 /* I */ | 0x54 /* T */ | 0x45 /* E */

/** @internal */
export interface ConnectOptions {
  readonly endpoint: Endpoint
  readonly user: string
  readonly database: string
  /** Read only when the server asks for a password. */
  readonly password: (() => string | undefined) | undefined
  /** Startup parameters beyond user/database/client_encoding (application_name, statement_timeout…). */
  readonly parameters: ReadonlyArray<readonly [string, string]>
  readonly protocol: "3.0" | "3.2"
  readonly connectTimeoutMillis: number
  readonly cancelTimeoutMillis: number
  readonly closeTimeoutMillis: number
  readonly queryTimeoutMillis: number | undefined
  readonly types: TypeParsers | undefined
  /** Prepared statements kept per connection (LRU). */
  readonly statementCacheSize: number
  /** Copy-out batching stops past this server rate, in bytes a millisecond. Default: BATCH_RATE_MAX. */
  readonly copyBatchRateMax?: number | undefined
}

/** A NoticeResponse. @internal */
export type Notice = ServerError

/** @internal */
export interface Hooks {
  /** A NotificationResponse (LISTEN). */
  onNotification?: ((channel: string, payload: string, processId: number) => void) | undefined
  /** A notice that arrived while no statement was running (those of a statement go with its result). */
  onNotice?: ((notice: Notice) => void) | undefined
  /** A notification listener threw: reported here instead of crashing the socket handler. */
  onListenerError?: ((error: unknown) => void) | undefined
  /**
   * The connection is dead: with why it was lost, or `undefined` when it was closed by `close`.
   * Called once, after every statement was settled.
   */
  onDead?: ((lost: ConnectionLost | undefined) => void) | undefined
}

/** One statement's result (pg's result shape). @internal */
export interface Result {
  command: string
  rowCount: number | null
  rows: Array<any>
  fields: Array<Field>
}

/** How a statement is sent. @internal */
export const enum Kind {
  /** `Q`: one or more statements, no parameters, text results. */
  Simple,
  /** Parse/Bind/Describe/Execute/Sync: one statement with parameters, possibly prepared. */
  Extended,
  /** Parse/Bind/Describe/Execute(n)/Flush, then fetches: a stream through a portal. */
  Portal,
  /** Parse/Bind/Describe/Execute/Sync of a `COPY … FROM STDIN`, then our CopyData. */
  CopyIn,
  /** Parse/Bind/Describe/Execute/Sync of a `COPY … TO STDOUT`, whose CopyData is read. */
  CopyOut
}

/** Statements that have the session alone until their ReadyForQuery: nothing is written behind them. */
const ownsSession = (kind: Kind): boolean => kind === Kind.Portal || kind === Kind.CopyIn || kind === Kind.CopyOut

/**
 * What a COPY statement has besides a statement's fields: the data read and not yet taken
 * (copy-out), and the one waiter of the Effect layer, woken on every change of the copy
 * (copy-in entered or left, the socket drained, data read, the statement settled).
 *
 * @internal
 */
export class CopyChannel {
  readonly chunks: Array<Buffer> = []
  bytes = 0
  waiter: (() => void) | undefined = undefined
  /**
   * Copy-out read batching (see `afterCopyRead`): `reading`; `held`, reading paused until
   * `holdTimer` fires; or `off` (not asked for, not a plain socket, or the server outpaced a hold).
   */
  read: "reading" | "held" | "off"
  holdTimer: ReturnType<typeof setTimeout> | undefined = undefined
  /** Bytes read since the copy's last hold began (or the copy began), and when that was. */
  gathered = 0
  heldAt = performance.now()
  /**
   * Copy-in, what our side may send (see `copyInWritable`): `ahead`, the COPY is sent and its
   * CopyInResponse not yet read: CopyData may go out behind it (the server reads it in copy-in,
   * and ignores it should the COPY fail before); `open`, in `copyIn`: CopyData and CopyDone;
   * `over`, CopyDone or CopyFail sent, or the copy left copy-in: nothing. Set by `transition`.
   * Copy-out channels are `over`: they never send.
   */
  input: "ahead" | "open" | "over"

  /**
   * Copy-out: reading pauses while `highWaterMark` bytes wait to be taken, and for
   * `batchMillis` after a read that drained the socket (0: never).
   */
  constructor(readonly highWaterMark: number, readonly batchMillis: number, sends: boolean) {
    this.read = batchMillis > 0 ? "reading" : "off"
    this.input = sends ? "ahead" : "over"
  }

  wake(): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    this.waiter = undefined
    waiter()
  }
}

/**
 * A COPY that cannot run where it was sent: through `query` (no data to send, no reader), or
 * in the other direction than the copy asked for. The server's copy was ended (CopyFail, or
 * its rows read and dropped); the session is usable.
 *
 * @internal
 */
export class CopyMisuse extends ServerError {
  constructor(readonly misuse: "statement" | "direction" | "both", message: string, hint: string) {
    super({ S: "ERROR", V: "ERROR", M: message, H: hint })
  }
}

const copyMisuse = (head: Request, response: "in" | "out" | "both"): CopyMisuse => {
  if (response === "both") {
    return new CopyMisuse(
      "both",
      "the server answered with CopyBothResponse (a replication stream), which this client does not support",
      "run replication commands with a replication client"
    )
  }
  const copy = head.kind === Kind.CopyIn || head.kind === Kind.CopyOut
  const use = response === "in" ? "copyFrom" : "copyTo"
  const what = response === "in" ? "COPY … FROM STDIN" : "COPY … TO STDOUT"
  return copy
    ? new CopyMisuse(
      "direction",
      `${what} was run by ${response === "in" ? "copyTo" : "copyFrom"}, which copies the other way`,
      `run it with ${use}`
    )
    : new CopyMisuse(
      "statement",
      `${what} cannot run as a statement (query, the sql template): ${
        response === "in" ? "it waits for data that a statement does not send" : "its output has no reader"
      }`,
      `run it with ${use} (PgPool's, or the PgClient our layers provide); ${
        response === "in" ? "it was aborted and loaded nothing" : "its output was read and dropped"
      }`
    )
}

/** The CopyFail message: the server reports it in its error ("COPY from stdin failed: …") and its log. */
const COPY_ABORTED = "aborted by the client"
/** CopyData up to this size is gathered in the write slab; larger chunks go to the socket as they are. */
const COPY_DIRECT = 16 * 1024
/** Gathered CopyData is written once this much is pending. */
const COPY_GATHER = 64 * 1024
/**
 * Copy-in data the socket may hold unsent before the writer waits for its drain: enough that the
 * server never waits for us while we make the next chunks, small enough to bound memory.
 */
const COPY_WINDOW = 1024 * 1024
/** Copy-out payloads up to this size are copied into the slab byte by byte (see `onCopyData`). */
const COPY_SMALL = 128
/** A socket read this long may have left data in the kernel's buffer: Node reads 64 KiB at a time. */
const FULL_READ = 64 * 1024
/**
 * Bytes per millisecond (256 MB/s): a copy-out whose server sent faster than this since the last
 * hold began stops batching: a server that fast fills our reads without holding, and holds
 * would fill the kernel's receive buffer (128 KiB before Linux grows it, about 0.5 MiB once it
 * has) and stall it. Below it, a hold can still fill a small buffer: an export at 100-256 MB/s
 * may read slower with batching than without (`readBatch: 0`). Rates seen from one hold to the
 * next include bursts: a server that exports 80 MB/s on average (the bench here) shows 150.
 */
const BATCH_RATE_MAX = 256 * 1024
/**
 * The copy-out slab: consecutive CopyData payloads are joined in it, one chunk per socket read.
 * A slab is sized to the read it starts with, and at least COPY_SLAB_FIRST bytes for a copy's
 * first, twice that for the next, up to COPY_SLAB: a small export (a few rows) then costs a
 * small buffer from Node's shared pool rather than a 64 KiB allocation of its own, which the
 * garbage collector pays for.
 */
const COPY_SLAB = 64 * 1024
const COPY_SLAB_FIRST = 1024

/** How a statement ends: its outcome, its results, the notices it raised. @internal */
export type Callback = (error: Outcome | undefined, results: Array<Result>, notices: Array<Notice> | undefined) => void

/** Why a statement is being cancelled. @internal */
export type CancelReason = "interrupt" | "timeout" | "close" | "abort"

/** Session state a statement changed, from its command tag. @internal */
export const enum SessionChange {
  Settings = 1,
  Listen = 2,
  Prepared = 4,
  Cursors = 8,
  Temp = 16
}

/**
 * A RowDescription, decoded once and kept: the columns as `pg` shows them (always `"text"`
 * format: the values are the text parsers' whatever the wire format), and how to read each
 * value from a DataRow.
 */
interface Shape {
  /** The RowDescription's body, to recognise it when it comes again. */
  readonly bytes: Buffer
  readonly fields: Array<Field>
  readonly names: Array<string>
  readonly decoders: Array<Decoder>
  /** The text parser of each column when it was built: a change of `types` rebuilds it. */
  readonly parsers: Array<unknown>
  /** A column came in binary whose type has no binary decoder: why, for the statement's error. */
  readonly undecodable: string | undefined
}

/**
 * What the results of one statement text looked like on this connection: the result formats to
 * ask for next time (binary for the columns that allow it), and the shapes seen, by result.
 */
interface Described {
  formats: Array<number> | undefined
  /**
   * Sent without parameters, it is plainly one statement and its columns include a type whose
   * binary form saves more than the extended protocol costs (dates, times, bytea): it goes
   * through the extended protocol, to ask for them in binary.
   */
  extended: boolean
  readonly shapes: Array<Shape | undefined>
}

interface CachedStatement {
  readonly name: string
  /** The columns, once the first Describe answered; `undefined` until then. */
  fields: Array<Field> | undefined
  /** The columns as Describe gave them (text). */
  shape: Shape | undefined
  /** The result formats its Binds ask for, and the shape that reads them. */
  formats: Array<number> | undefined
  bound: Shape | undefined
}

const STALE_PLAN = "0A000"
const NO_SUCH_STATEMENT = "26000"
const QUERY_CANCELED = "57014"
const USER_REQUEST = "canceling statement due to user request"
const RETRY_CANCEL_MILLIS = 10
const PROTOCOL_VIOLATION = "08P01"
const MAX_RERUNS = 3

/**
 * One statement: its text and values, its state on the wire, its results. Its identity is what
 * a cancel targets.
 *
 * @internal
 */
export class Request {
  state: "queued" | "written" | "done" = "queued"
  /** Set once a cancel was asked for; the first reason wins. */
  cancelReason: CancelReason | undefined = undefined
  /** A cancel signal of ours may have reached it (it was in flight when one was sent). */
  exposed = false
  reruns = 0
  /** A CancelRequest was sent for it. */
  signalled = false
  /** Once done: whether it had been written (so ran, or was cancelled, on the server) or was dropped unsent. */
  endedOnServer = false
  /** The transaction status the statement started in (as of the ReadyForQuery before it). */
  startedIn: TxStatus = 0x49
  /** When it became the head (performance.now()), for the pool's slow-head rule. */
  headSince = 0
  deadline = 0
  writtenAt = 0
  results: Array<Result> = []
  current: Result | undefined = undefined
  /** How the current result's columns are read. */
  shape: Shape | undefined = undefined
  error: ServerError | undefined = undefined
  /** Its result could not be decoded (set when `error` is not). */
  failure: ClientError | undefined = undefined
  /** Simple and unnamed: what its text's results looked like before. */
  described: Described | undefined = undefined
  /** The result formats its Bind asked for (`undefined`: all text). */
  formats: Array<number> | undefined = undefined
  /** Its BindComplete came: it started to run. */
  bound = false
  notices: Array<Notice> | undefined = undefined
  /** Extended: the cached statement used, and whether this run parses it. */
  statement: CachedStatement | undefined = undefined
  parses = false
  /** Portal: the pending fetch, and whether the portal is suspended (waiting for us) or done. */
  fetch: ((error: Outcome | undefined, rows: Array<any>, done: boolean) => void) | undefined = undefined
  fetching = false
  exhausted = false
  closingPortal = false
  /** COPY: its data and waiter. */
  copy: CopyChannel | undefined = undefined

  constructor(
    readonly kind: Kind,
    readonly sql: string,
    readonly values: Array<string | Buffer | null> | undefined,
    readonly arrayMode: boolean,
    readonly prepare: boolean,
    readonly chunkSize: number,
    public callback: Callback | undefined,
    /** Opaque to this layer: the Effect layer's context for the statement (its span). */
    readonly context: unknown
  ) {}
}

/** An episode of cancelling: from the first CancelRequest until no signal can still arrive. */
interface Cancelling {
  readonly handles: Array<CancelHandle>
  /** Statements done but held until the episode ends. */
  readonly held: Array<Request>
  deadline: ReturnType<typeof setTimeout> | undefined
  retry: ReturnType<typeof setTimeout> | undefined
}

let serial = 0

/** @internal */
export class WireConnection {
  readonly id = ++serial
  state: ConnectionState = "connecting"
  txStatus: TxStatus = 0x49
  processId = 0
  secretKey: Uint8Array = new Uint8Array(0)
  /** ParameterStatus values (server_version, TimeZone, …). */
  readonly parameters = new Map<string, string>()
  /** What statements changed in the session since the last `clearSessionChanges`. */
  sessionChanges = 0
  /** Statements completed since the last `clearSessionChanges`. */
  statementsRun = 0
  /** Set when a late cancel hit a statement inside a transaction: the pool must retire it. */
  retired = false
  /** Why the connection ended, once it has. */
  lost: ConnectionLost | undefined = undefined
  tls = false
  protocolMinor = 0

  private stream: Duplex | undefined = undefined
  private readonly writer = new Writer()
  private readonly reader = new Reader((type, buf, start, end) =>
    // A copy-out is a message per row: its rows skip the dispatch.
    type === Backend.CopyData ? this.onCopyData(buf, start, end) : this.onMessage(type, buf, start, end)
  )
  private readonly queue: Array<Request> = []
  private readonly inflight: Array<Request> = []
  private flushScheduled = false
  private portalOpen = false
  private cancelling: Cancelling | undefined = undefined
  private cancelWrittenAt = -Infinity
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  private timerDue = 0
  private readonly statements = new Map<string, CachedStatement>()
  /** Result shapes of statement texts run unnamed (simple or extended), LRU by insertion. */
  private readonly described = new Map<string, Described>()
  /** The session's DateStyle is ISO (the only one whose text `postgres-date` reads). */
  private dateStyleIso = true
  private statementSerial = 0
  private readonly closes: Array<string> = []
  private readonly closeWaiters: Array<() => void> = []
  private closeTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private readonly types: TypeParsers
  // startup
  private connectCallback: ((error: Error | undefined) => void) | undefined = undefined
  private scram: Scram | undefined = undefined
  private abortOpen: (() => void) | undefined = undefined
  // copy-out: payloads joined in a slab; [copyStart, copyEnd) is read and not yet delivered
  private copySlab: Buffer | undefined = undefined
  /** The size of the copy's next slab (see COPY_SLAB_FIRST). */
  private copySlabSize = COPY_SLAB_FIRST
  private copyStart = 0
  private copyEnd = 0

  constructor(readonly options: ConnectOptions, readonly hooks: Hooks = {}) {
    this.types = options.types ?? defaultTypes
  }

  // ---------------------------------------------------------------------------------------
  // State

  /**
   * The one place the state changes. Entering `closing` or `dead` fails every statement that
   * is queued or in flight (with `lost`), so no caller is left waiting.
   */
  private transition(next: ConnectionState): void {
    const previous = this.state
    if (previous === next || previous === "dead") return
    this.state = next
    const stream = this.stream as { ref?: () => void; unref?: () => void } | undefined
    if (next === "idle") {
      // Idle, the socket must not keep an otherwise finished process alive.
      stream?.unref?.()
    } else if (previous === "idle" || previous === "connecting") {
      stream?.ref?.()
    }
    if (previous === "copyIn" || next === "copyIn") {
      const copy = this.inflight[0]?.copy
      if (copy !== undefined) {
        copy.input = next === "copyIn" ? "open" : "over"
        copy.wake()
      }
    }
    if (previous === "copyOut") {
      // What was read and not delivered is dropped (left before the copy's end: a cancel, a
      // close, the socket lost), the slab goes with the copy, a hold ends, and reading goes on.
      const copy = this.inflight[0]?.copy
      if (copy !== undefined) this.endHold(copy, "off")
      this.copySlab = undefined
      this.copySlabSize = COPY_SLAB_FIRST
      this.copyStart = this.copyEnd = 0
      this.updateFlow()
    }
    if (next === "closing" || next === "dead") {
      const lost = this.lost ?? new ConnectionLost("Closed", undefined, undefined)
      this.lost = lost
      this.clearTimer()
      for (const request of this.queue.splice(0)) this.settle(request, lost)
      for (const request of this.inflight) this.settle(request, lost)
      if (this.cancelling !== undefined) {
        for (const request of this.cancelling.held.splice(0)) this.settle(request, lost)
      }
    }
    if (next === "dead") {
      this.inflight.length = 0
      this.wakeIdle()
      this.endCancelling(true)
      this.stream?.destroy()
      if (this.closeTimer !== undefined) clearTimeout(this.closeTimer)
      for (const waiter of this.closeWaiters.splice(0)) waiter()
      const callback = this.connectCallback
      if (callback !== undefined) {
        this.connectCallback = undefined
        callback(lostCause(lost(this)))
      }
      this.hooks.onDead?.(previous === "closing" ? undefined : this.lost)
    }
  }

  /** idle or busy, from what is queued and in flight. */
  private settleActivity(): void {
    if (this.state !== "idle" && this.state !== "busy") return
    this.transition(this.queue.length === 0 && this.inflight.length === 0 ? "idle" : "busy")
  }

  /** The connection is gone: the socket is destroyed and every statement fails with `reason`. */
  lose(reason: LostReason, code: string | undefined, cause: unknown): void {
    if (this.state === "dead") return
    if (this.lost === undefined || this.state !== "closing") this.lost = new ConnectionLost(reason, code, cause)
    this.transition("dead")
  }

  get busy(): boolean {
    return this.queue.length > 0 || this.inflight.length > 0 || this.cancelling !== undefined
  }

  /** Statements queued or in flight. */
  get depth(): number {
    return this.queue.length + this.inflight.length
  }

  /** How long the head statement has been running (ms), 0 when none. */
  get headRunningMillis(): number {
    const head = this.inflight[0]
    return head === undefined ? 0 : performance.now() - head.headSince
  }

  /** The states in which a statement is accepted (queued; written in idle and busy only). */
  private get accepting(): boolean {
    const state = this.state
    return state === "idle" || state === "busy" || state === "cancelling" || state === "copyIn" ||
      state === "copyOut"
  }

  get usable(): boolean {
    return this.accepting && !this.retired
  }

  // ---------------------------------------------------------------------------------------
  // Connect

  /** Opens the session (transport, TLS per sslmode, startup, authentication), bounded by connectTimeout. */
  connect(callback: (error: Error | undefined) => void): void {
    this.connectCallback = callback
    const mode = this.options.endpoint.sslmode
    // libpq: prefer tries TLS first and falls back without it; allow does the reverse.
    const attempts = mode === "prefer" ? [true, false] : mode === "allow" ? [false, true] : [startsWithTls(mode)]
    const deadline = setTimeout(() => {
      this.abortOpen?.()
      this.lose("Closed", "ETIMEDOUT", new TransportError("connect timeout expired", "ETIMEDOUT"))
    }, this.options.connectTimeoutMillis)
    deadline.unref?.()
    const done = (error: Error | undefined) => {
      clearTimeout(deadline)
      callback(error)
    }
    this.connectCallback = done
    const attempt = (i: number) => {
      this.abortOpen = open(this.options.endpoint, attempts[i]!, false, (error, opened) => {
        this.abortOpen = undefined
        if (this.state !== "connecting") return
        if (error !== undefined || opened === undefined) {
          const tlsFailed = error?.code !== undefined && /TLS|SSL|CERT/i.test(error.code)
          if (i + 1 < attempts.length && (mode !== "prefer" || tlsFailed)) return attempt(i + 1)
          this.connectCallback = undefined
          this.lose("Closed", error?.code, error)
          return done(error)
        }
        this.tls = opened.tls
        this.attach(opened.stream)
        this.onStartupFailed = i + 1 < attempts.length && mode === "allow" ? () => attempt(i + 1) : undefined
        this.startup()
      })
    }
    attempt(0)
  }

  /** `allow`: a server that rejects the plain session is tried again with TLS. */
  private onStartupFailed: (() => void) | undefined = undefined

  private attach(stream: Duplex): void {
    this.stream = stream
    stream.on("data", (chunk: Buffer) => {
      this.reader.feed(chunk)
      if (this.state === "copyOut") this.afterCopyRead(chunk.length)
    })
    stream.on("error", (error: Error & { code?: string }) => this.onStreamEnd(error))
    stream.on("close", () => this.onStreamEnd(undefined))
    stream.on("drain", () => this.wakeCopyIn())
    stream.resume()
  }

  private onStreamEnd(error: (Error & { code?: string }) | undefined): void {
    if (this.state === "dead") return
    if (this.state === "closing") {
      // The close we asked for (Terminate, end): done.
      return this.transition("dead")
    }
    this.lose("Closed", error?.code, error)
  }

  private startup(): void {
    const parameters: Array<readonly [string, string]> = [
      ["user", this.options.user],
      ["database", this.options.database],
      ["client_encoding", "UTF8"],
      ...this.options.parameters
    ]
    this.writer.startup(this.options.protocol === "3.2" ? PROTOCOL_3_2 : PROTOCOL_3_0, parameters)
    this.write()
  }

  private write(): void {
    const out = this.writer.take()
    if (out !== undefined && this.stream !== undefined && !this.stream.destroyed) this.stream.write(out)
  }

  private onAuthentication(buf: Buffer, start: number, end: number): void {
    const code = buf.readInt32BE(start)
    const password = () => {
      const value = this.options.password?.()
      if (value === undefined) {
        this.failStartup(new AuthError("the server asked for a password, but none was given"))
        return undefined
      }
      return value
    }
    switch (code) {
      case 0: // AuthenticationOk
        return
      case 3: { // cleartext
        const pw = password()
        if (pw === undefined) return
        this.writer.password(pw)
        return this.write()
      }
      case 5: { // MD5, with a 4-byte salt
        const pw = password()
        if (pw === undefined) return
        this.writer.password(md5Password(this.options.user, pw, buf.subarray(start + 4, start + 8)))
        return this.write()
      }
      case 10: { // SASL: the mechanisms, NUL-terminated, then an empty string
        const mechanisms: Array<string> = []
        let at = start + 4
        while (at < end && buf[at] !== 0) {
          const [name, next] = cstringAt(buf, at)
          mechanisms.push(name)
          at = next
        }
        if (!mechanisms.includes("SCRAM-SHA-256")) {
          return this.failStartup(
            new AuthError(`the server offers only SASL mechanisms ${mechanisms.join(", ")}; SCRAM-SHA-256 is supported`)
          )
        }
        const pw = password()
        if (pw === undefined) return
        this.scram = new Scram(pw)
        this.writer.saslInitial("SCRAM-SHA-256", this.scram.initial())
        return this.write()
      }
      case 11: { // SASLContinue
        const scram = this.scram
        if (scram === undefined) return this.failStartup(new AuthError("unexpected SASLContinue"))
        const data = Buffer.from(buf.subarray(start + 4, end))
        return scram.continue(data, (error, final) => {
          if (this.state !== "connecting") return
          if (error !== undefined) return this.failStartup(error)
          this.writer.saslResponse(final!)
          this.write()
        })
      }
      case 12: { // SASLFinal
        const scram = this.scram
        this.scram = undefined
        const error = scram === undefined
          ? new AuthError("unexpected SASLFinal")
          : scram.final(buf.subarray(start + 4, end))
        if (error !== undefined) this.failStartup(error)
        return
      }
      default:
        return this.failStartup(
          new AuthError(`the server asks for an authentication method that is not supported (code ${code})`)
        )
    }
  }

  private failStartup(error: Error): void {
    const callback = this.connectCallback
    this.connectCallback = undefined
    this.lost = new ConnectionLost("Closed", undefined, error)
    this.transition("dead")
    callback?.(error)
  }

  // ---------------------------------------------------------------------------------------
  // Messages

  /** Every backend message but CopyData, which the reader hands to `onCopyData` directly. */
  private onMessage(type: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case Backend.DataRow:
        return this.onDataRow(buf, start)
      case Backend.ReadyForQuery:
        return this.onReadyForQuery(buf[start] as TxStatus)
      case Backend.CommandComplete:
        return this.onCommandComplete(buf, start, end)
      case Backend.RowDescription:
        return this.onRowDescription(buf, start, end)
      case Backend.BindComplete: {
        const head = this.inflight[0]
        if (head !== undefined) head.bound = true
        return
      }
      case Backend.ParseComplete:
      case Backend.CloseComplete:
      case Backend.ParameterDescription:
        return
      case Backend.NoData: {
        const head = this.inflight[0]
        if (head?.statement !== undefined && head.parses) {
          head.statement.fields = []
          head.statement.shape = noColumns
        }
        return
      }
      case Backend.PortalSuspended:
        return this.onPortalSuspended()
      case Backend.EmptyQueryResponse:
        return this.onEmptyQuery()
      case Backend.ErrorResponse:
        return this.onError(ServerError.fromMessage(buf, start, end))
      case Backend.NoticeResponse:
        return this.onNotice(ServerError.fromMessage(buf, start, end))
      case Backend.NotificationResponse:
        return this.onNotification(buf, start)
      case Backend.ParameterStatus: {
        const [name, next] = cstringAt(buf, start)
        const [value] = cstringAt(buf, next)
        this.parameters.set(name, value)
        if (name === "DateStyle") {
          const iso = value.startsWith("ISO")
          if (iso !== this.dateStyleIso) {
            // The formats chosen for date and time columns no longer hold.
            this.dateStyleIso = iso
            this.forgetFormats()
          }
        }
        return
      }
      case Backend.BackendKeyData:
        this.processId = buf.readInt32BE(start)
        // Any length: 4 bytes in protocol 3.0, up to 256 in 3.2.
        this.secretKey = Uint8Array.prototype.slice.call(buf, start + 4, end)
        return
      case Backend.Authentication:
        return this.onAuthentication(buf, start, end)
      case Backend.NegotiateProtocolVersion:
        // The server speaks an older minor version (3.0): carry on with it.
        this.protocolMinor = buf.readInt32BE(start) & 0xffff
        return
      case Backend.CopyInResponse:
        return this.onCopyInResponse()
      case Backend.CopyOutResponse:
        return this.onCopyOutResponse()
      case Backend.CopyBothResponse:
        return this.onCopyBothResponse()
      case Backend.CopyDone:
        return this.onCopyDone()
      default:
        return
    }
  }

  private onRowDescription(buf: Buffer, start: number, end: number): void {
    const head = this.inflight[0]
    if (head === undefined) return
    const statement = head.statement
    if (statement !== undefined && head.parses) {
      // Describe of a statement being prepared: its columns, in text (not bound yet).
      const shape = this.buildShape(buf, start, end)
      statement.fields = shape.fields
      statement.shape = shape
      statement.formats = this.binaryFormats(shape)
      statement.bound = undefined
      return this.beginResult(head, shape)
    }
    const described = head.described
    const index = head.current !== undefined && head.current.command === ""
      ? head.results.length - 1
      : head.results.length
    let shape = described?.shapes[index]
    if (shape === undefined || !sameBytes(shape.bytes, buf, start, end) || !this.sameParsers(shape)) {
      shape = this.buildShape(buf, start, end)
      if (described !== undefined) {
        described.shapes[index] = shape
        if (index === 0 && (head.kind !== Kind.Simple || isSingleStatement(head.sql))) {
          described.formats = this.binaryFormats(shape)
          if (head.kind === Kind.Simple) described.extended = this.binaryPays(shape, described.formats)
        }
      }
    }
    this.beginResult(head, shape)
  }

  /** Decodes a RowDescription: the columns, and a decoder per column for the format it comes in. */
  private buildShape(buf: Buffer, start: number, end: number): Shape {
    const wire = rowDescription(buf, start)
    const count = wire.length
    const fields = new Array<Field>(count)
    const names = new Array<string>(count)
    const decoders = new Array<Decoder>(count)
    const parsers = new Array<unknown>(count)
    let undecodable: string | undefined
    for (let i = 0; i < count; i++) {
      const field = wire[i]!
      const parser = this.types.getTypeParser(field.dataTypeID, "text")
      parsers[i] = parser
      names[i] = field.name
      fields[i] = field.format === "text" ? field : { ...field, format: "text" }
      if (field.format === "text") {
        decoders[i] = textDecoder(parser)
      } else {
        const decoder = binaryDecoder(field.dataTypeID)
        if (decoder === undefined) {
          undecodable ??= `column "${field.name}" came in binary as type ${field.dataTypeID}, which has no binary ` +
            "decoder: its type changed since this statement last ran on this connection (the statement did run)"
        }
        decoders[i] = decoder ?? textDecoder(parser)
      }
    }
    return { bytes: Buffer.from(buf.subarray(start, end)), fields, names, decoders, parsers, undecodable }
  }

  /** Whether `types` still gives the parsers `shape` was built with. */
  private sameParsers(shape: Shape): boolean {
    const fields = shape.fields
    for (let i = 0; i < fields.length; i++) {
      if (this.types.getTypeParser(fields[i]!.dataTypeID, "text") !== shape.parsers[i]) return false
    }
    return true
  }

  /** The result formats to bind with for `shape`'s columns: binary where it allows; `undefined` for all text. */
  private binaryFormats(shape: Shape): Array<number> | undefined {
    let formats: Array<number> | undefined
    const fields = shape.fields
    for (let i = 0; i < fields.length; i++) {
      if (binaryOk(this.types, fields[i]!.dataTypeID, this.dateStyleIso)) {
        formats ??= new Array<number>(fields.length).fill(0)
        formats[i] = 1
      }
    }
    return formats
  }

  /** Whether asking `shape`'s columns in `formats` pays for the extended protocol (see `Described.extended`). */
  private binaryPays(shape: Shape, formats: Array<number> | undefined): boolean {
    if (formats === undefined) return false
    for (let i = 0; i < formats.length; i++) {
      if (formats[i] === 1 && binaryPays(shape.fields[i]!.dataTypeID)) return true
    }
    return false
  }

  /** A prepared statement's shape for the formats a run was bound with. */
  private boundShape(statement: CachedStatement, formats: Array<number> | undefined): Shape | undefined {
    const text = statement.shape
    if (formats === undefined || text === undefined) return text
    if (statement.bound !== undefined && statement.formats === formats) return statement.bound
    const decoders = text.decoders.slice()
    for (let i = 0; i < formats.length; i++) {
      if (formats[i] === 1) decoders[i] = binaryDecoder(text.fields[i]!.dataTypeID) ?? decoders[i]!
    }
    const bound: Shape = { ...text, decoders }
    if (statement.formats === formats) statement.bound = bound
    return bound
  }

  private beginResult(head: Request, shape: Shape): void {
    if (head.current !== undefined && head.current.command !== "") {
      // pg's shape: a new result per statement of a multi-statement query.
      head.current = undefined
    }
    const result: Result = head.current ?? { command: "", rowCount: null, rows: [], fields: [] }
    if (head.current === undefined) {
      head.current = result
      head.results.push(result)
    }
    result.fields = shape.fields
    head.shape = shape
    if (shape.undecodable !== undefined && head.failure === undefined && head.error === undefined) {
      head.failure = new ClientError(shape.undecodable)
      // Asked in text from now on.
      if (head.described !== undefined) this.described.delete(head.sql)
    }
  }

  private onDataRow(buf: Buffer, start: number): void {
    const head = this.inflight[0]
    if (head === undefined) return
    let shape = head.shape
    if (head.current === undefined || shape === undefined) {
      // A prepared statement run without Describe: its columns are the cached ones.
      const statement = head.statement
      shape = statement === undefined ? undefined : this.boundShape(statement, head.formats)
      if (shape === undefined) return
      this.beginResult(head, shape)
    }
    if (head.failure !== undefined) return
    const decoders = shape.decoders
    const count = (buf[start]! << 8) | buf[start + 1]!
    let at = start + 2
    if (head.arrayMode) {
      const row = new Array(count)
      for (let i = 0; i < count; i++) {
        const length = (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!
        at += 4
        if (length === -1) {
          row[i] = null
        } else {
          row[i] = decoders[i]!(buf, at, at + length)
          at += length
        }
      }
      head.current!.rows.push(row)
    } else {
      const names = shape.names
      const row: Record<string, unknown> = {}
      for (let i = 0; i < count; i++) {
        const length = (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!
        at += 4
        if (length === -1) {
          row[names[i]!] = null
        } else {
          row[names[i]!] = decoders[i]!(buf, at, at + length)
          at += length
        }
      }
      head.current!.rows.push(row)
    }
  }

  private onCommandComplete(buf: Buffer, start: number, end: number): void {
    const head = this.inflight[0]
    if (head === undefined) return
    if (head.current === undefined || head.current.command !== "") {
      const shape = head.current === undefined && head.statement !== undefined
        ? this.boundShape(head.statement, head.formats)
        : undefined
      if (shape !== undefined && shape.fields.length > 0) {
        this.beginResult(head, shape)
      } else {
        head.current = { command: "", rowCount: null, rows: [], fields: [] }
        head.results.push(head.current)
      }
    }
    const result = head.current!
    // pg's reading of the tag: the verb, and its last number ("INSERT 0 5" → 5, "SELECT 3" → 3).
    const tagEnd = end - 1
    result.command = commandOf(buf, start, tagEnd)
    result.rowCount = result.command === "" ? null : rowCountOf(buf, start + result.command.length, tagEnd)
    this.noteSessionChange(head, buf, start, tagEnd, result)
    if (head.kind === Kind.Portal) {
      head.exhausted = true
      this.deliverChunk(head, true)
    }
  }

  private noteSessionChange(head: Request, buf: Buffer, start: number, end: number, result: Result): void {
    switch (result.command) {
      case "SET":
        if (head.kind === Kind.Simple || !/^\s*set\s+local\b/i.test(head.sql)) {
          this.sessionChanges |= SessionChange.Settings
        }
        return
      case "RESET":
        this.sessionChanges |= SessionChange.Settings
        return
      case "LISTEN":
        this.sessionChanges |= SessionChange.Listen
        return
      case "PREPARE":
        this.sessionChanges |= SessionChange.Prepared
        return
      case "DECLARE":
        this.sessionChanges |= SessionChange.Cursors
        return
      case "CREATE":
        if (/^CREATE (TABLE|VIEW|SEQUENCE)/.test(buf.toString("utf8", start, end))) {
          this.sessionChanges |= SessionChange.Temp
        }
        return
      case "SELECT":
        // CREATE TABLE AS / SELECT INTO report SELECT n but send no RowDescription.
        if (result.fields.length === 0 && head.kind !== Kind.Portal && !this.hadRows(head, result)) {
          this.sessionChanges |= SessionChange.Temp
        }
        return
      case "DISCARD":
      case "DEALLOCATE": {
        // Our own prepared statements may be gone with them.
        const tag = buf.toString("utf8", start, end)
        if (tag === "DISCARD ALL" || tag === "DEALLOCATE ALL") this.forgetStatements()
        return
      }
    }
  }

  private hadRows(head: Request, result: Result): boolean {
    return result.fields.length > 0 || (head.statement?.fields?.length ?? 0) > 0
  }

  private onEmptyQuery(): void {
    const head = this.inflight[0]
    if (head === undefined) return
    if (head.current === undefined || head.current.command !== "") {
      head.current = { command: "", rowCount: null, rows: [], fields: [] }
      head.results.push(head.current)
    }
    if (head.kind === Kind.Portal) {
      head.exhausted = true
      this.deliverChunk(head, true)
    }
  }

  private onNotice(notice: Notice): void {
    const head = this.inflight[0]
    if (head !== undefined && head.callback !== undefined) {
      ;(head.notices ??= []).push(notice)
    } else {
      this.hooks.onNotice?.(notice)
    }
  }

  private onNotification(buf: Buffer, start: number): void {
    const processId = buf.readInt32BE(start)
    const [channel, next] = cstringAt(buf, start + 4)
    const [payload] = cstringAt(buf, next)
    try {
      this.hooks.onNotification?.(channel, payload, processId)
    } catch (error) {
      // Thrown inside the socket handler it would crash the process: report it instead.
      this.hooks.onListenerError?.(error)
    }
  }

  private onError(error: ServerError): void {
    if (this.state === "connecting") {
      const retry = this.onStartupFailed
      if (retry !== undefined && error.code?.startsWith("28")) {
        this.onStartupFailed = undefined
        const stream = this.stream
        this.stream = undefined
        stream?.removeAllListeners("close")
        stream?.removeAllListeners("error")
        stream?.on("error", () => undefined)
        stream?.destroy()
        return retry()
      }
      return this.failStartup(error)
    }
    const head = this.inflight[0]
    if (head === undefined || error.fatal) {
      // Outside a statement (idle_in_transaction_session_timeout, a terminated backend) or
      // FATAL: the server ends the session.
      if (head !== undefined) head.error = error
      return this.lose("Terminated", error.code, error)
    }
    head.error ??= error
    if (this.state === "copyIn") {
      // The server rejected the data (a bad row, a constraint): it drops what follows until a
      // Sync, which the copy swallowed when it began.
      this.writer.sync()
      this.write()
      this.transition("busy")
    } else if (this.state === "copyOut") {
      this.deliverCopyOut()
      this.transition("busy")
    }
    if (head.kind === Kind.Portal) {
      // The server skips to Sync: send it, and fail the fetch.
      if (!head.closingPortal) {
        head.closingPortal = true
        this.writer.sync()
        this.write()
      }
      this.deliverChunk(head, true)
    }
  }

  private onReadyForQuery(status: TxStatus): void {
    this.txStatus = status
    if (this.state === "connecting") {
      this.onStartupFailed = undefined
      const callback = this.connectCallback
      this.connectCallback = undefined
      this.transition("idle")
      callback?.(undefined)
      return
    }
    const head = this.inflight.shift()
    if (head !== undefined) {
      if (ownsSession(head.kind)) this.portalOpen = false
      this.complete(head)
    }
    const next = this.inflight[0]
    if (next !== undefined) this.becomeHead(next)
    if (this.state === "closing" && this.inflight.length === 0) return this.finishClose()
    if (this.cancelling !== undefined) this.maybeEndCancelling()
    this.settleActivity()
    if (this.queue.length > 0) this.scheduleFlush()
  }

  private becomeHead(request: Request): void {
    request.headSince = performance.now()
    request.startedIn = this.txStatus
    // Closing: each statement written behind the head is cancelled in its turn, and the cancel
    // episode lasts until the last of them is over (see maybeEndCancelling).
    if (this.state === "closing") request.cancelReason ??= "close"
    if (request.cancelReason !== undefined) this.cancelHead(request)
  }

  /** A statement's ReadyForQuery: re-run, hold (while a cancel may still arrive), or settle. */
  private complete(request: Request): void {
    this.statementsRun++
    const error = request.error
    if (error !== undefined && request.kind === Kind.Simple && this.state !== "closing") {
      if (this.lateCancel(request, error)) {
        // Re-run when nothing of it can have taken effect: it began outside a transaction and
        // no statement of it had completed (its CommandComplete read): its implicit transaction
        // was rolled back.
        const completed = request.results.some((result) => result.command !== "")
        if (request.startedIn === 0x49 && !completed && request.reruns < MAX_RERUNS) {
          return this.rerun(request)
        }
        this.retired = true
      }
    } else if (error !== undefined && request.kind === Kind.Extended && this.state !== "closing") {
      if (
        (error.code === STALE_PLAN || error.code === NO_SUCH_STATEMENT) && request.statement !== undefined &&
        !request.parses
      ) {
        // The plan went stale (a schema change) or the statement is gone (DISCARD/DEALLOCATE).
        this.evict(request.sql, error.code === STALE_PLAN)
        if (request.startedIn === 0x49 && request.cancelReason === undefined && request.reruns < MAX_RERUNS) {
          return this.rerun(request)
        }
      } else if (error.code === PROTOCOL_VIOLATION && request.formats !== undefined && !request.bound) {
        // Its Bind asked for one result format per column and the statement's column count has
        // changed since (a column added or dropped under `SELECT *`): nothing ran. Asked in text
        // from now on; re-run when its implicit transaction was rolled back.
        if (request.statement === undefined) this.described.delete(request.sql)
        if (request.startedIn === 0x49 && request.cancelReason === undefined && request.reruns < MAX_RERUNS) {
          return this.rerun(request)
        }
      } else if (this.lateCancel(request, error)) {
        // A late signal of ours, meant for a statement before it.
        if (request.startedIn === 0x49 && request.reruns < MAX_RERUNS) return this.rerun(request)
        this.retired = true
      }
    }
    if (
      request.parses && request.statement !== undefined && error !== undefined && request.statement.fields === undefined
    ) {
      // Its Parse failed: the name does not exist on the server.
      this.evict(request.sql, false)
    }
    if (this.cancelling !== undefined && request.cancelReason !== undefined) {
      this.cancelling.held.push(request)
      return
    }
    this.settle(request, undefined)
  }

  /** Whether `error` is a cancel signal of ours that arrived late: meant for a statement before `request`. */
  private lateCancel(request: Request, error: ServerError): boolean {
    return error.code === QUERY_CANCELED && request.cancelReason === undefined && error.message === USER_REQUEST &&
      (request.exposed || request.writtenAt - this.cancelWrittenAt < this.options.cancelTimeoutMillis)
  }

  private rerun(request: Request): void {
    request.reruns++
    request.state = "queued"
    request.results = []
    request.current = undefined
    request.shape = undefined
    request.error = undefined
    request.failure = undefined
    request.statement = undefined
    request.described = undefined
    request.formats = undefined
    request.bound = false
    request.parses = false
    request.exposed = false
    this.queue.unshift(request)
    this.scheduleFlush()
  }

  /**
   * Ends a statement: its callback runs once, with the outcome. A statement cancelled for a
   * timeout that failed with the cancel's 57014 reports the timeout.
   */
  private settle(request: Request, lostError: ConnectionLost | undefined): void {
    if (request.state === "done") return
    const written = request.state === "written"
    request.state = "done"
    request.endedOnServer = written
    const callback = request.callback
    request.callback = undefined
    if (request.kind === Kind.Portal) {
      const fetch = request.fetch
      request.fetch = undefined
      fetch?.(lostError ?? request.error, [], true)
    }
    if (callback === undefined) return
    let outcome: Outcome | undefined = lostError
    if (outcome !== undefined && request.cancelReason === "timeout") {
      // Its timeout's cancel was not confirmed and the connection destroyed: it still timed out.
      outcome = new QueryTimeout(this.options.queryTimeoutMillis ?? 0)
    } else if (outcome === undefined) {
      const error = request.error
      const reason = request.cancelReason
      if (reason === "timeout" && (written ? error?.code === QUERY_CANCELED : true)) {
        // Cancelled for its timeout (or dropped before it was sent): the timeout is the outcome.
        outcome = new QueryTimeout(this.options.queryTimeoutMillis ?? 0)
      } else if (!written && reason !== undefined) {
        outcome = new NotSent()
      } else {
        // Finished on its own before the cancel took effect: its own outcome.
        outcome = error ?? request.failure
      }
    }
    const results = request.results
    const notices = request.notices
    request.results = []
    request.current = undefined
    request.notices = undefined
    callback(outcome, results, notices)
    request.copy?.wake()
    if (this.idleWaiters.length > 0 && this.depth === 0) this.wakeIdle()
  }

  // ---------------------------------------------------------------------------------------
  // Statements

  /**
   * Queues a statement. `params` undefined sends a simple query (several statements allowed),
   * unless an earlier run showed it is one statement with columns worth reading in binary
   * (`Described.extended`); otherwise an extended one, prepared (cached per connection) when
   * `prepare` is set. Fails at once (through the callback) when the connection does not accept
   * statements or a parameter cannot be serialised.
   */
  submit(
    sql: string,
    params: ReadonlyArray<unknown> | undefined,
    arrayMode: boolean,
    prepare: boolean,
    context: unknown,
    callback: Callback
  ): Request {
    let values: Array<string | Buffer | null> | undefined
    if (params !== undefined) {
      try {
        values = serializeAll(params)
      } catch (cause) {
        const request = new Request(Kind.Extended, sql, undefined, arrayMode, false, 0, undefined, context)
        request.state = "done"
        callback(new ClientError(cause instanceof Error ? cause.message : String(cause), cause), [], undefined)
        return request
      }
    }
    if (values === undefined && this.described.get(sql)?.extended === true) values = noValues
    const request = new Request(
      values === undefined ? Kind.Simple : Kind.Extended,
      sql,
      values,
      arrayMode,
      prepare,
      0,
      callback,
      context
    )
    return this.enqueue(request)
  }

  /**
   * Opens a portal for `sql` and fetches its rows `chunkSize` at a time with `fetch`. The
   * connection is busy until `closePortal` (or the end of the rows and the close) settles it.
   */
  openPortal(
    sql: string,
    params: ReadonlyArray<unknown>,
    arrayMode: boolean,
    chunkSize: number,
    context: unknown,
    callback: (error: Outcome | undefined) => void
  ): Request {
    let values: Array<string | Buffer | null>
    try {
      values = serializeAll(params)
    } catch (cause) {
      const request = new Request(Kind.Portal, sql, undefined, arrayMode, false, chunkSize, undefined, context)
      request.state = "done"
      callback(new ClientError(cause instanceof Error ? cause.message : String(cause), cause))
      return request
    }
    const request = new Request(
      Kind.Portal,
      sql,
      values,
      arrayMode,
      false,
      chunkSize,
      (error) => callback(error),
      context
    )
    request.fetching = true
    return this.enqueue(request)
  }

  /** Fetches the next chunk of an open portal: `done` with the last rows (or none). */
  fetchPortal(request: Request, callback: (error: Outcome | undefined, rows: Array<any>, done: boolean) => void): void {
    if (request.state === "done") return callback(request.error ?? this.lost, [], true)
    if (request.exhausted || request.error !== undefined) return callback(request.error, [], true)
    request.fetch = callback
    if (request.fetching) return // the first chunk is on its way (sent with the open)
    request.fetching = true
    this.writer.execute("", request.chunkSize)
    this.writer.flush()
    this.write()
  }

  private deliverChunk(request: Request, done: boolean): void {
    request.fetching = false
    const fetch = request.fetch
    if (fetch === undefined) return
    request.fetch = undefined
    const rows = request.current?.rows ?? []
    if (request.current !== undefined) request.current.rows = []
    fetch(request.error, rows, done || request.error !== undefined)
  }

  private onPortalSuspended(): void {
    const head = this.inflight[0]
    if (head?.kind !== Kind.Portal) return
    if (head.cancelReason !== undefined && !head.closingPortal) {
      // Suspended, the backend waits for us: closing the portal is the cancel.
      this.closePortalNow(head)
    }
    this.deliverChunk(head, false)
  }

  /** Closes a portal: cancels a fetch still running, then Close + Sync; settles on ReadyForQuery. */
  closePortal(request: Request, callback: () => void): void {
    if (request.state === "done") return callback()
    const previous = request.callback
    request.callback = (error, results, notices) => {
      previous?.(error, results, notices)
      callback()
    }
    if (request.state === "queued") return this.cancel(request, "interrupt")
    if (request.cancelReason === undefined) request.cancelReason = "interrupt"
    if (request.fetching && !request.exhausted && request.error === undefined) {
      // A fetch is running on the server: cancel it; the error leads to Sync.
      if (this.inflight[0] === request) this.cancelHead(request)
      return
    }
    this.closePortalNow(request)
  }

  private closePortalNow(request: Request): void {
    if (request.closingPortal) return
    request.closingPortal = true
    if (!request.exhausted && request.error === undefined) this.writer.close(0x50, "")
    this.writer.sync()
    this.write()
  }

  /** Queues `request` and writes it at the microtask's flush, or at once with `writeNow`. */
  private enqueue(request: Request, writeNow = false): Request {
    if (!this.accepting) {
      request.state = "done"
      const callback = request.callback!
      request.callback = undefined
      callback(lost(this), [], undefined)
      return request
    }
    if (this.options.queryTimeoutMillis !== undefined && !ownsSession(request.kind)) {
      request.deadline = performance.now() + this.options.queryTimeoutMillis
    }
    this.queue.push(request)
    this.settleActivity()
    if (request.deadline !== 0) this.armTimer()
    if (writeNow) this.flush()
    else this.scheduleFlush()
    return request
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(this.flush)
  }

  /** Writes every queued statement, one Sync each, in one socket write. */
  private readonly flush = (): void => {
    this.flushScheduled = false
    if (this.state !== "idle" && this.state !== "busy") return
    if (this.queue.length === 0) return
    // A portal owns the session until its Sync: nothing is written behind it.
    if (this.portalOpen) return
    const now = performance.now()
    for (const name of this.closes.splice(0)) this.writer.close(0x53, name)
    while (this.queue.length > 0) {
      const request = this.queue.shift()!
      this.encode(request)
      request.state = "written"
      request.writtenAt = now
      this.inflight.push(request)
      if (this.inflight.length === 1) this.becomeHead(request)
      if (ownsSession(request.kind)) {
        this.portalOpen = true
        break
      }
    }
    this.write()
    // A copy-in may send its data from now on (`ahead`).
    this.wakeCopyIn()
  }

  /** Wakes the copy-in at the head, if there is one: it may be able to write now (written, drained). */
  private wakeCopyIn(): void {
    const head = this.inflight[0]
    if (head?.kind === Kind.CopyIn) head.copy!.wake()
  }

  private encode(request: Request): void {
    const w = this.writer
    if (request.kind === Kind.Simple) {
      request.described = this.describedOf(request.sql)
      w.query(request.sql)
      return
    }
    let name = ""
    let formats: Array<number> | undefined
    if (request.prepare && request.kind === Kind.Extended && this.options.statementCacheSize > 0) {
      let cached = this.statements.get(request.sql)
      if (cached === undefined) {
        cached = {
          name: `s${++this.statementSerial}`,
          fields: undefined,
          shape: undefined,
          formats: undefined,
          bound: undefined
        }
        this.remember(request.sql, cached)
        request.parses = true
        w.parse(cached.name, request.sql)
        w.describe(0x53, cached.name)
      } else {
        // Most recently used: last in the map's order.
        this.statements.delete(request.sql)
        this.statements.set(request.sql, cached)
        if (cached.shape !== undefined && !this.sameParsers(cached.shape)) {
          // `types` changed: the columns are read (and their formats chosen) again.
          cached.shape = { ...cached.shape, ...this.reparse(cached.shape) }
          cached.formats = this.binaryFormats(cached.shape)
          cached.bound = undefined
        }
        formats = cached.formats
      }
      request.statement = cached
      name = cached.name
    } else {
      const described = this.describedOf(request.sql)
      request.described = described
      // Unnamed, the server does not check the columns against the formats we choose from its
      // last run (a change of column count fails the Bind): binary only in an implicit
      // transaction, where a failed Bind is re-run.
      if (described?.formats !== undefined && !this.maybeInTransaction()) formats = described.formats
      w.parse("", request.sql)
    }
    request.formats = formats
    w.bind("", name, request.values!, formats)
    if (name === "") w.describe(0x50, "")
    if (request.kind === Kind.Portal) {
      w.execute("", request.chunkSize)
      w.flush()
    } else {
      w.execute("", 0)
      w.sync()
    }
  }

  private remember(sql: string, statement: CachedStatement): void {
    this.statements.set(sql, statement)
    if (this.statements.size > this.options.statementCacheSize) {
      const oldest = this.statements.keys().next().value as string
      const evicted = this.statements.get(oldest)!
      this.statements.delete(oldest)
      this.closes.push(evicted.name)
      // Written before the Parse that made room, in the same flush.
      for (const name of this.closes.splice(0)) this.writer.close(0x53, name)
    }
  }

  private evict(sql: string, close: boolean): void {
    const cached = this.statements.get(sql)
    if (cached === undefined) return
    this.statements.delete(sql)
    if (close) this.closes.push(cached.name)
  }

  /** Whether the session is, or may be by the time a statement written now runs, in a transaction block. */
  private maybeInTransaction(): boolean {
    if (this.txStatus !== 0x49) return true
    const inflight = this.inflight
    for (let i = 0; i < inflight.length; i++) {
      const ahead = inflight[i]!
      if (ahead.kind === Kind.Simple || opensTransaction(ahead.sql)) return true
    }
    return false
  }

  /** What this connection saw of `sql`'s results before (made on first use; `undefined` with no cache). */
  private describedOf(sql: string): Described | undefined {
    let described = this.described.get(sql)
    if (described === undefined) {
      const limit = this.options.statementCacheSize
      if (limit === 0) return undefined
      if (this.described.size >= limit) this.described.delete(this.described.keys().next().value as string)
      described = { formats: undefined, extended: false, shapes: [] }
      this.described.set(sql, described)
    }
    return described
  }

  /** The text decoders of `shape`'s columns with the parsers `types` gives now. */
  private reparse(shape: Shape): Pick<Shape, "decoders" | "parsers"> {
    const parsers = shape.fields.map((field) => this.types.getTypeParser(field.dataTypeID, "text"))
    return { parsers, decoders: parsers.map((parser) => textDecoder(parser)) }
  }

  /** Forgets the result formats chosen (DateStyle changed): they are chosen again from the next results. */
  private forgetFormats(): void {
    this.described.clear()
    for (const statement of this.statements.values()) {
      statement.formats = statement.shape === undefined ? undefined : this.binaryFormats(statement.shape)
      statement.bound = undefined
    }
  }

  /** Forgets every prepared statement (after DISCARD ALL / DEALLOCATE ALL: the server has none). */
  forgetStatements(): void {
    this.statements.clear()
    this.closes.length = 0
  }

  /**
   * The result format codes a run of `sql` through the extended protocol asks for next
   * (`undefined`: all text): a prepared statement's, else those chosen for it unnamed. For tests
   * and diagnostics.
   */
  resultFormats(sql: string): ReadonlyArray<number> | undefined {
    return this.statements.get(sql)?.formats ?? this.described.get(sql)?.formats
  }

  /** Prepared statements cached on this connection. */
  get preparedCount(): number {
    return this.statements.size
  }

  // ---------------------------------------------------------------------------------------
  // COPY

  /**
   * Opens a `COPY … FROM STDIN` (one statement: Parse/Bind/Execute/Sync). Once the server's
   * CopyInResponse has put the connection in `copyIn`, `copyWrite` sends data and `copyDone`
   * ends it; a cancel sends CopyFail. `callback` gets the outcome and the result (its row
   * count) at the ReadyForQuery. Fails at once when anything else is queued or in flight: a
   * COPY has the session alone, and nothing is written behind it until it ends.
   */
  copyIn(sql: string, context: unknown, callback: Callback): Request {
    return this.openCopy(Kind.CopyIn, sql, new CopyChannel(0, 0, true), context, callback)
  }

  /**
   * Opens a `COPY … TO STDOUT`: in `copyOut` the server's CopyData payloads are gathered for
   * `copyTake`, and reading the socket pauses while `highWaterMark` bytes wait to be taken, and
   * for `batchMillis` after a read that drained it (0: never; see `afterCopyRead`). A cancel is
   * a CancelRequest, exact as for any statement. Otherwise as `copyIn`.
   */
  copyOut(sql: string, highWaterMark: number, batchMillis: number, context: unknown, callback: Callback): Request {
    // Batching needs Node's plain 64 KiB socket reads: not TLS records, not a user's stream.
    const batchable = !this.tls && this.options.endpoint.stream === undefined
    return this.openCopy(
      Kind.CopyOut,
      sql,
      new CopyChannel(highWaterMark, batchable ? batchMillis : 0, false),
      context,
      callback
    )
  }

  private openCopy(kind: Kind, sql: string, channel: CopyChannel, context: unknown, callback: Callback): Request {
    const request = new Request(kind, sql, [], false, false, 0, callback, context)
    request.copy = channel
    if (this.depth > 0 && this.usable) {
      request.state = "done"
      request.callback = undefined
      callback(
        new ClientError(
          `a COPY needs the connection alone, but ${this.depth} statement(s) are queued or in flight on it; ` +
            "run the COPY on a connection of its own (PgPool's copyFrom/copyTo lease one)"
        ),
        [],
        undefined
      )
      return request
    }
    // Nothing can be gathered with a COPY (it has the connection alone): written now rather than
    // at the microtask's flush, so that its first data can follow at once.
    return this.enqueue(request, true)
  }

  /**
   * Whether `request`'s copy can go on now: copy-in in progress with the socket drained, or
   * copy-out data to take; or the statement is done.
   */
  copyReady(request: Request): boolean {
    if (request.state === "done") return true
    if (request.kind === Kind.CopyOut) return request.copy!.chunks.length > 0
    const stream = this.stream!
    return this.copyInWritable(request) && (stream.writableNeedDrain !== true || stream.writableLength < COPY_WINDOW)
  }

  /**
   * Whether CopyData of `request` may be written now: in copy-in, or `ahead` of the server's
   * CopyInResponse — written, in `busy` (not cancelling), not failed. Data sent ahead saves the
   * wait for the response: the server reads it once in copy-in; should the COPY fail before
   * (a missing table, a lock timeout), the server skips to the Sync sent with it and then
   * ignores CopyData, as the protocol has it for a client still sending after a failed COPY.
   * CopyDone waits for copy-in (`copyEndable`), so no Sync of ours is ever left unanswered.
   */
  private copyInWritable(request: Request): boolean {
    if (this.inflight[0] !== request || this.stream === undefined) return false
    const input = request.copy!.input
    return input === "open" || (input === "ahead" && this.state === "busy" && request.error === undefined)
  }

  /** Whether `copyDone(request)` can end the copy now (it is in copy-in), or it is done. */
  copyEndable(request: Request): boolean {
    return request.state === "done" || (this.inflight[0] === request && request.copy!.input === "open")
  }

  /**
   * Calls `callback` at the next change of the copy (copy-in entered or left, the COPY written,
   * the socket drained, data read, the statement settled), at once if it is done: the caller
   * checks what it waits for (`copyReady`, `copyEndable`) first, and again when called.
   */
  copyWait(request: Request, callback: () => void): void {
    if (request.state === "done") return callback()
    request.copy!.waiter = callback
  }

  /**
   * Sends `data` as one CopyData when `request` is the copy-in in progress (else drops it: the
   * copy has ended, and its outcome comes with the callback). Small chunks are gathered and
   * written 64 KiB at a time; larger ones go to the socket as they are, unchanged (the caller
   * must not change them afterwards). Returns whether more can be written now: `false` means
   * wait with `copyWait` (for the socket's drain, or the copy's end).
   */
  copyWrite(request: Request, data: Uint8Array): boolean {
    if (!this.copyInWritable(request)) return false
    const stream = this.stream!
    if (data.length >= COPY_DIRECT) {
      // The header (after what was gathered) and the chunk itself, in one writev.
      this.writer.copyDataHeader(data.length)
      stream.cork()
      this.write()
      stream.write(data)
      stream.uncork()
    } else {
      this.writer.copyData(data)
      if (this.writer.pending >= COPY_GATHER) this.write()
    }
    return !stream.writableNeedDrain || stream.writableLength < COPY_WINDOW
  }

  /**
   * Ends the data of `request`'s copy-in (CopyDone) once `copyEndable`; before (data sent ahead
   * of the CopyInResponse) it does nothing: wait with `copyWait`. Its outcome comes with the callback.
   */
  copyDone(request: Request): void {
    if (this.state === "copyIn" && this.inflight[0] === request) this.leaveCopyIn("done")
  }

  /** The copy-out data read so far (whole rows: the server sends a row per CopyData), taken. */
  copyTake(request: Request): Array<Buffer> {
    const copy = request.copy!
    if (copy.chunks.length === 0) return []
    const chunks = copy.chunks.splice(0)
    copy.bytes = 0
    if (this.inflight[0] === request) this.updateFlow()
    return chunks
  }

  /** Ends copy-in from our side — CopyDone, or CopyFail — then the Sync the copy swallowed. */
  private leaveCopyIn(how: "done" | "fail"): void {
    if (how === "done") this.writer.copyDone()
    else this.writer.copyFail(COPY_ABORTED)
    // The Sync sent after Execute was read (and ignored) by the server in copy-in.
    this.writer.sync()
    this.write()
    this.transition("busy")
  }

  private onCopyInResponse(): void {
    const head = this.inflight[0]
    if (head === undefined) return
    if (head.kind === Kind.CopyIn && head.state === "written" && head.cancelReason === undefined) {
      if (this.state === "busy") return this.transition("copyIn")
    } else if (head.kind !== Kind.CopyIn) {
      head.error ??= copyMisuse(head, "in")
    }
    // Nobody will send data (misuse, cancelled, closing): end the copy at once. The Sync that
    // follows is owed by statements sent with one (the copy swallowed it); a portal sends its
    // own on the error.
    this.writer.copyFail(COPY_ABORTED)
    if (head.kind !== Kind.Simple && head.kind !== Kind.Portal) this.writer.sync()
    this.write()
  }

  private onCopyOutResponse(): void {
    const head = this.inflight[0]
    if (head === undefined) return
    if (head.kind === Kind.CopyOut && head.state === "written" && head.cancelReason === undefined) {
      if (this.state === "busy") this.transition("copyOut")
      return
    }
    // Not to be read (misuse, cancelled): its rows are read and dropped until its CopyDone.
    if (head.kind !== Kind.CopyOut) head.error ??= copyMisuse(head, "out")
  }

  private onCopyBothResponse(): void {
    const head = this.inflight[0]
    if (head === undefined) return
    head.error ??= copyMisuse(head, "both")
    // Our half ends at once; the server's rows are read and dropped until its CopyDone.
    this.writer.copyDone()
    this.write()
  }

  private onCopyData(buf: Buffer, start: number, end: number): void {
    if (this.state !== "copyOut") return // dropped: not ours to read
    const length = end - start
    let slab = this.copySlab
    // A read is one chunk: the first payload of a socket chunk takes a new slab unless the rest
    // of the last one holds all that the chunk can carry (at most COPY_SLAB).
    const need = this.copyEnd === this.copyStart ? Math.max(length, Math.min(buf.length - start, COPY_SLAB)) : length
    if (slab === undefined || this.copyEnd + need > slab.length) {
      this.deliverCopyOut()
      slab = this.copySlab = Buffer.allocUnsafe(Math.max(this.copySlabSize, need))
      if (this.copySlabSize < COPY_SLAB) this.copySlabSize *= 2
      this.copyStart = this.copyEnd = 0
    }
    // The first payload since the last delivery: deliver once this socket chunk is parsed.
    if (this.copyEnd === this.copyStart) queueMicrotask(this.deliverCopyOut)
    let at = this.copyEnd
    if (length <= COPY_SMALL) {
      // A row of a few dozen bytes: a loop is much cheaper than a call into Buffer.copy.
      for (let i = start; i < end; i++) slab[at++] = buf[i]!
    } else {
      at += buf.copy(slab, at, start, end)
    }
    this.copyEnd = at
  }

  /** Hands the payloads joined since the last delivery to the copy-out, as one chunk. */
  private readonly deliverCopyOut = (): void => {
    if (this.copyEnd === this.copyStart || this.state !== "copyOut") return
    const chunk = this.copySlab!.subarray(this.copyStart, this.copyEnd)
    this.copyStart = this.copyEnd
    const copy = this.inflight[0]!.copy!
    copy.chunks.push(chunk)
    copy.bytes += chunk.length
    this.updateFlow()
    copy.wake()
  }

  private onCopyDone(): void {
    if (this.state !== "copyOut") return // the end of a copy read and dropped
    this.deliverCopyOut()
    this.transition("busy")
  }

  /**
   * Copy-out read batching. A read shorter than a full one drained the kernel's buffer: the
   * server is slower than we read, and each of its sends (8 KiB) would wake this process to
   * read it — a wake-up the server's process pays for when both run on one host (its CPU for
   * an export was 2.7 % lower with batching over 55 bench rounds, bench/README "COPY"). So reading holds for the copy's batchMillis,
   * the rows gather in the kernel's buffer meanwhile, and they are read in a few full reads.
   * Rows read are delivered at once: a hold delays reading only, by at most batchMillis at a
   * time (the copy's end is seen that much later at most). A server that sent more than
   * BATCH_RATE_MAX bytes a millisecond since the last hold outpaces holding: batching stops for
   * the rest of the copy.
   */
  private afterCopyRead(length: number): void {
    const copy = this.inflight[0]?.copy
    if (copy === undefined || copy.read !== "reading") return
    copy.gathered += length
    if (length >= FULL_READ) return
    const now = performance.now()
    if (copy.gathered > (this.options.copyBatchRateMax ?? BATCH_RATE_MAX) * (now - copy.heldAt)) {
      copy.read = "off"
      return
    }
    copy.gathered = 0
    copy.heldAt = now
    copy.read = "held"
    // Cleared by `endHold` when the copy-out ends first. Not unref'd: while reading is held the
    // socket is paused, and once Node's buffer of it is full only this timer is left to keep
    // the process alive for the copy (a script whose only work is the export would exit in it).
    copy.holdTimer = setTimeout(() => {
      this.endHold(copy, "reading")
      this.updateFlow()
    }, copy.batchMillis)
    this.updateFlow()
  }

  /** Ends a copy-out's hold: its timer fired (`reading` again), or the copy-out ended (`off`, its timer cleared). */
  private endHold(copy: CopyChannel, next: "reading" | "off"): void {
    if (copy.holdTimer !== undefined) clearTimeout(copy.holdTimer)
    copy.holdTimer = undefined
    if (copy.read === "held" || next === "off") copy.read = next
  }

  /** Reading the socket pauses while a copy-out's data waits to be taken past its highWaterMark, or its reading is held; only then. */
  private updateFlow(): void {
    const stream = this.stream
    if (stream === undefined) return
    const copy = this.state === "copyOut" ? this.inflight[0]?.copy : undefined
    if (copy !== undefined && (copy.read === "held" || copy.bytes >= copy.highWaterMark)) {
      if (!stream.isPaused()) stream.pause()
    } else if (stream.isPaused()) {
      stream.resume()
    }
  }

  // ---------------------------------------------------------------------------------------
  // Timeout and cancel

  private armTimer(): void {
    let due = Infinity
    for (const request of this.inflight) {
      if (request.cancelReason === undefined && request.deadline !== 0) {
        due = request.deadline
        break
      }
    }
    if (due === Infinity) {
      for (const request of this.queue) {
        if (request.cancelReason === undefined && request.deadline !== 0) {
          due = request.deadline
          break
        }
      }
    }
    if (due === Infinity) return
    if (this.timer !== undefined && this.timerDue <= due && this.timerDue > performance.now()) return
    const delay = Math.max(0, due - performance.now())
    if (this.timer !== undefined && Math.abs(delay - this.options.queryTimeoutMillis!) < 1) {
      // The common case, one statement at a time: re-arm the same timer.
      this.timer.refresh()
    } else {
      if (this.timer !== undefined) clearTimeout(this.timer)
      this.timer = setTimeout(this.onTimer, delay)
      this.timer.unref?.()
    }
    this.timerDue = due
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.timerDue = 0
  }

  private readonly onTimer = (): void => {
    this.timerDue = 0
    const now = performance.now() + 0.5
    const expired: Array<Request> = []
    for (const request of this.inflight) {
      if (request.cancelReason === undefined && request.deadline !== 0 && request.deadline <= now) expired.push(request)
    }
    for (const request of this.queue) {
      if (request.cancelReason === undefined && request.deadline !== 0 && request.deadline <= now) expired.push(request)
    }
    for (const request of expired) this.cancel(request, "timeout")
    this.armTimer()
  }

  /**
   * Cancels one statement, exactly: dropped if not yet written; cancelled on the server when
   * it is (or becomes) the head. `"abort"` destroys the connection instead. The statement's
   * callback runs once the cancel has ended.
   */
  cancel(request: Request, reason: CancelReason): void {
    if (request.state === "done") return
    request.cancelReason ??= reason
    if (reason === "abort") return this.lose("CancelUnconfirmed", undefined, undefined)
    if (request.state === "queued") {
      const at = this.queue.indexOf(request)
      if (at !== -1) this.queue.splice(at, 1)
      this.settle(request, undefined)
      this.settleActivity()
      return
    }
    if (this.inflight[0] === request) this.cancelHead(request)
  }

  private cancelHead(request: Request): void {
    if (this.state === "dead") return
    if (request.kind === Kind.Portal && !request.fetching) {
      // Suspended (the backend waits for us) or done: closing the portal is enough.
      return this.closePortalNow(request)
    }
    // In copy-in the backend waits for our data: CopyFail ends the copy, no signal is needed
    // (the episode still bounds the wait for its error and ReadyForQuery by cancelTimeout).
    const failCopy = request.kind === Kind.CopyIn && this.state === "copyIn"
    if (failCopy) this.leaveCopyIn("fail")
    let episode = this.cancelling
    if (episode === undefined) {
      episode = { handles: [], held: [], deadline: undefined, retry: undefined }
      this.cancelling = episode
      episode.deadline = setTimeout(() => {
        if (this.cancelling === episode) this.lose("CancelUnconfirmed", undefined, undefined)
      }, this.options.cancelTimeoutMillis)
      episode.deadline.unref?.()
      if (this.state === "idle" || this.state === "busy" || this.state === "copyOut") this.transition("cancelling")
    }
    if (failCopy || request.signalled) return // the retry timer signals again if needed
    // Everything else in flight may meet the signal (a late cancel).
    for (const other of this.inflight) if (other !== request) other.exposed = true
    this.sendCancelPacket(episode, request)
  }

  private sendCancelPacket(episode: Cancelling, target: Request): void {
    const endpoint = this.options.endpoint
    const sentAt = performance.now()
    const handle: CancelHandle = sendCancel(endpoint, this.tls, this.processId, this.secretKey, () => {
      if (this.cancelling !== episode) return
      // Still at the head: still running on the server (even if already failed for its caller, as on close).
      if (this.inflight[0] === target) {
        // The server has signalled the backend (or the side socket failed). A signal that came
        // before the statement started is ignored by the server: if the statement still runs a
        // little later — twice the cancel's own round trip, the server's pace now — signal again.
        this.scheduleRetry(episode, target, Math.max(RETRY_CANCEL_MILLIS, 2 * (performance.now() - sentAt)))
      }
      if (this.state === "closing") this.finishClose()
      else this.maybeEndCancelling()
    })
    target.signalled = true
    episode.handles.push(handle)
  }

  private scheduleRetry(episode: Cancelling, target: Request, delay: number): void {
    if (episode.retry !== undefined) return
    episode.retry = setTimeout(() => {
      episode.retry = undefined
      if (this.cancelling === episode && this.inflight[0] === target) {
        this.sendCancelPacket(episode, target)
      }
    }, delay)
    episode.retry.unref?.()
  }

  /** Ends the cancel episode once no signal of ours can still arrive and no cancelled statement is running. */
  private maybeEndCancelling(): void {
    const episode = this.cancelling
    if (episode === undefined) return
    const head = this.inflight[0]
    if (head !== undefined && head.cancelReason !== undefined && head.kind !== Kind.Portal) return
    if (head !== undefined && head.kind === Kind.Portal && head.fetching && head.cancelReason !== undefined) return
    let open = 0
    for (const handle of episode.handles) if (handle.written && !handle.settled) open++
    // Only the server's close of every side socket proves that no signal is still on its way:
    // PostgreSQL signals the backend twice (its pid, then its process group), and the second
    // signal can come after the backend already reported the first one's 57014.
    if (open > 0) return
    this.endCancelling(false)
  }

  private endCancelling(dying: boolean): void {
    const episode = this.cancelling
    if (episode === undefined) return
    this.cancelling = undefined
    if (episode.deadline !== undefined) clearTimeout(episode.deadline)
    if (episode.retry !== undefined) clearTimeout(episode.retry)
    for (const handle of episode.handles) {
      if (handle.written) this.cancelWrittenAt = performance.now()
      handle.abort()
    }
    if (dying) return
    if (this.state === "cancelling") {
      this.transition(this.queue.length === 0 && this.inflight.length === 0 ? "idle" : "busy")
    }
    for (const request of episode.held) this.settle(request, undefined)
    if (this.queue.length > 0) this.scheduleFlush()
    this.armTimer()
  }

  private readonly idleWaiters: Array<() => void> = []

  private wakeIdle(): void {
    for (const waiter of this.idleWaiters.splice(0)) waiter()
  }

  /**
   * Cancels every statement queued or in flight (each exactly, as `cancel`); `callback` runs
   * once none is left (or the connection is dead).
   */
  cancelAll(callback: () => void): void {
    if (this.depth === 0 && this.cancelling === undefined) return callback()
    if (this.state === "dead") return callback()
    this.idleWaiters.push(callback)
    for (const request of [...this.queue]) this.cancel(request, "interrupt")
    for (const request of [...this.inflight]) this.cancel(request, "interrupt")
  }

  // ---------------------------------------------------------------------------------------
  // Close

  /**
   * Closes the session: statements queued or in flight fail at once (`closing`); a statement
   * still running on the server is cancelled (bounded by cancelTimeout); then Terminate, and the
   * socket ends (bounded by closeTimeout, else destroyed). `callback` runs once it is dead.
   */
  close(callback: () => void): void {
    if (this.state === "dead") return callback()
    this.closeWaiters.push(callback)
    if (this.state === "closing") return
    if (this.state === "connecting") {
      this.abortOpen?.()
      return this.lose("Closed", undefined, undefined)
    }
    const head = this.inflight[0]
    // In copy-in the server waits for our data: CopyFail ends the copy without a signal.
    const failedCopy = this.state === "copyIn"
    if (failedCopy) this.leaveCopyIn("fail")
    this.transition("closing")
    if (head !== undefined) {
      // The statement runs on: cancel it, and wait for its ReadyForQuery before Terminate.
      head.cancelReason ??= "close"
      if (!failedCopy) this.cancelHead(head)
      const bound = setTimeout(() => {
        if (this.state === "closing") this.lose("CancelUnconfirmed", undefined, undefined)
      }, this.options.cancelTimeoutMillis)
      bound.unref?.()
      this.closeTimer = bound
      return
    }
    this.finishClose()
  }

  /** Terminate, once nothing runs on the server and the server confirmed every cancel it was sent. */
  private finishClose(): void {
    if (this.state !== "closing" || this.inflight.length > 0) return
    const episode = this.cancelling
    if (episode !== undefined && episode.handles.some((h) => h.written && !h.settled)) return
    this.endCancelling(true)
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer)
    this.closeTimer = setTimeout(() => this.transition("dead"), this.options.closeTimeoutMillis)
    this.closeTimer.unref?.()
    const stream = this.stream
    if (stream === undefined || stream.destroyed) return this.transition("dead")
    this.writer.terminate()
    this.write()
    stream.end()
  }

  /** Destroys the socket now. */
  destroy(): void {
    this.lose("Closed", undefined, undefined)
  }
}

const lost = (connection: WireConnection): ConnectionLost =>
  connection.lost ?? new ConnectionLost("Closed", undefined, undefined)

const lostCause = (error: ConnectionLost): Error => error.cause instanceof Error ? error.cause : error

const noValues: Array<string | Buffer | null> = []

const noColumns: Shape = {
  bytes: Buffer.alloc(0),
  fields: [],
  names: [],
  decoders: [],
  parsers: [],
  undecodable: undefined
}

/** Whether `bytes` equals `buf[start, end)`. */
const sameBytes = (bytes: Buffer, buf: Buffer, start: number, end: number): boolean =>
  bytes.length === end - start && buf.compare(bytes, 0, bytes.length, start, end) === 0

// Command tags seen on every statement, interned: no string made for them.
const verbs = ["SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK", "SET", "MERGE", "FETCH", "MOVE"]

const isLetter = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)

/** The command of a tag as `pg` reads it: its leading letters ("CREATE TABLE" → "CREATE"). */
const commandOf = (buf: Buffer, start: number, end: number): string => {
  let at = start
  while (at < end && isLetter(buf[at]!)) at++
  const length = at - start
  for (let v = 0; v < verbs.length; v++) {
    const verb = verbs[v]!
    if (verb.length !== length) continue
    let i = 0
    while (i < length && verb.charCodeAt(i) === buf[start + i]) i++
    if (i === length) return verb
  }
  return buf.toString("latin1", start, at)
}

/** A tag's row count as `pg` reads it: the last of up to two numbers after the command ("INSERT 0 5" → 5). */
const rowCountOf = (buf: Buffer, at: number, end: number): number | null => {
  let count: number | null = null
  for (let k = 0; k < 2; k++) {
    if (at >= end || buf[at] !== 0x20) break
    let i = at + 1
    let n = 0
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) n = n * 10 + (buf[i++]! - 0x30)
    if (i === at + 1) break
    count = n
    at = i
  }
  return count
}

/** Whether `sql` may open a transaction block: it starts with BEGIN or START (or a comment). */
const opensTransaction = (sql: string): boolean => {
  let at = 0
  while (at < sql.length && sql.charCodeAt(at) <= 0x20) at++
  const c = sql.charCodeAt(at) | 0x20
  if (c === 0x2f || c === 0x2d) return true // "/*" or "--" (0x2f, 0x2d are unchanged by | 0x20)
  if (c !== 0x62 && c !== 0x73) return false // b, s
  const word = sql.slice(at, at + 5).toUpperCase()
  return word === "BEGIN" || word === "START"
}

/**
 * Whether `sql` is plainly one statement: not empty, no `;` (so no second statement) and no `$`
 * (a parameter reference, which a simple query reports differently). Conservative: a `;` in
 * a string or a comment counts too. Such a text can go through the extended protocol even
 * without parameters, with the same results as a simple query.
 *
 * @internal
 */
export const isSingleStatement = (sql: string): boolean =>
  sql.length > 0 && sql.indexOf(";") === -1 && sql.indexOf("$") === -1
