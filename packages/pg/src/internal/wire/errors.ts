/**
 * What the wire layer fails with. Plain classes; the Effect layer turns them into the tagged
 * `PgError`s.
 *
 * @internal
 */
import { fieldsOf } from "./protocol.js"

/**
 * The base of every wire error: an expected failure (a refused connection, a server error), so
 * its printed form is its name and message alone — a stack would only point into the socket
 * handler that noticed it, never at the caller's code.
 *
 * @internal
 */
export class WireError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    Object.defineProperty(this, "stack", {
      configurable: true,
      get(this: Error) {
        return `${this.name}: ${this.message}`
      }
    })
  }
}

/** An ErrorResponse (or NoticeResponse) from the server, with pg's field names. @internal */
export class ServerError extends WireError {
  override readonly name = "ServerError"
  /** Severity, not localised (`V`) when the server sends it. */
  readonly severity: string | undefined
  readonly code: string | undefined
  readonly detail: string | undefined
  readonly hint: string | undefined
  readonly position: string | undefined
  readonly internalPosition: string | undefined
  readonly internalQuery: string | undefined
  readonly where: string | undefined
  readonly schema: string | undefined
  readonly table: string | undefined
  readonly column: string | undefined
  readonly dataType: string | undefined
  readonly constraint: string | undefined
  readonly file: string | undefined
  readonly line: string | undefined
  readonly routine: string | undefined

  constructor(fields: Record<string, string>) {
    super(fields.M ?? "unknown server error")
    this.severity = fields.V ?? fields.S
    this.code = fields.C
    this.detail = fields.D
    this.hint = fields.H
    this.position = fields.P
    this.internalPosition = fields.p
    this.internalQuery = fields.q
    this.where = fields.W
    this.schema = fields.s
    this.table = fields.t
    this.column = fields.c
    this.dataType = fields.d
    this.constraint = fields.n
    this.file = fields.F
    this.line = fields.L
    this.routine = fields.R
  }

  static fromMessage(buf: Buffer, start: number, end: number): ServerError {
    return new ServerError(fieldsOf(buf, start, end))
  }

  /** FATAL or PANIC: the server ends the session after it. */
  get fatal(): boolean {
    return this.severity === "FATAL" || this.severity === "PANIC"
  }
}

/** Why a connection ended. @internal */
export type LostReason = "Closed" | "Terminated" | "CancelUnconfirmed"

/** The connection is gone (or going): every statement in flight or queued fails with it. @internal */
export class ConnectionLost extends WireError {
  override readonly name = "ConnectionLost"
  constructor(
    readonly reason: LostReason,
    readonly code: string | undefined,
    override readonly cause: unknown
  ) {
    super(
      reason === "Terminated"
        ? `the server ended the session${code === undefined ? "" : ` (SQLSTATE ${code})`}`
        : reason === "CancelUnconfirmed"
        ? "a cancel was not confirmed in time"
        : "the connection is closed"
    )
  }
}

/** A statement that could not be sent (a parameter that cannot be serialised). @internal */
export class ClientError extends WireError {
  override readonly name = "ClientError"
  constructor(message: string, override readonly cause?: unknown) {
    super(message)
  }
}

/** The statement ran past `queryTimeout` and was cancelled on the server (or never sent). @internal */
export class QueryTimeout extends WireError {
  override readonly name = "QueryTimeout"
  constructor(readonly timeoutMillis: number) {
    super(`the statement did not finish within ${timeoutMillis} ms`)
  }
}

/** The statement was interrupted before it was written: it was never sent. @internal */
export class NotSent extends WireError {
  override readonly name = "NotSent"
  constructor() {
    super("the statement was interrupted before it was sent")
  }
}

/** What a statement ends with, when it does not succeed. @internal */
export type Outcome = ServerError | ConnectionLost | ClientError | QueryTimeout | NotSent
