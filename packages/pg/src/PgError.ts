/**
 * The errors of `@scoped-pool/pg`: a failed connection attempt (`PgConnectError`), a
 * statement the server rejected (`PgQueryError`, which keeps its SQLSTATE), a statement past
 * its client-side timeout (`PgQueryTimeout`) and a connection that is gone (`PgConnectionLost`). Every message says what happened and what to do, and
 * none contains a password or a connection URL.
 *
 * @since 0.1.0
 */
import { ExpectedError } from "@scoped-pool/core/PoolError"
import * as Predicate from "effect/Predicate"
import { maskText } from "./internal/mask.js"

/**
 * The identifier shared by every PostgreSQL error of this package.
 *
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~@scoped-pool/pg/PgError" = "~@scoped-pool/pg/PgError" as const

/**
 * The type of {@link TypeId}.
 *
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Why a connection attempt failed.
 *
 * - `Unreachable`: nothing accepted the TCP connection (refused, unknown host, no route), or the
 *   server closed it during startup (for example while starting up or shutting down).
 * - `Authentication`: wrong password or user, or `pg_hba.conf` rejects this client (28P01, 28000).
 * - `UnknownDatabase`: the database does not exist (3D000).
 * - `Timeout`: the startup did not complete within `connectTimeout`.
 * - `Tls`: the TLS negotiation or certificate check failed.
 * - `Protocol`: the server answered something unexpected (class 08 and other SQLSTATEs).
 * - `TooManyConnections`: the server's `max_connections` is reached (53300).
 *
 * @since 0.1.0
 * @category models
 */
export type PgConnectErrorReason =
  | "Unreachable"
  | "Authentication"
  | "UnknownDatabase"
  | "Timeout"
  | "Tls"
  | "Protocol"
  | "TooManyConnections"

const connectAdvice: Record<PgConnectErrorReason, string> = {
  Unreachable: "check that the server is running and that host and port are right (listen_addresses, firewall)",
  Authentication: "check the user name and password, and the server's pg_hba.conf rules for this client",
  UnknownDatabase: "create the database or fix the database name",
  Timeout: "check the network path and the server's load, or raise connectTimeout",
  Tls: "check the ssl options (certificate authority, server name) and the server's ssl settings",
  Protocol: "check that host and port point at a PostgreSQL server",
  TooManyConnections: "the server's max_connections is reached; lower the pool sizes or raise max_connections"
}

// Text taken from a cause (a driver's or the OS's message) has its passwords masked: a URL's
// as the URL parser reads it, a key=value string's `password=` value.
const causeText = (cause: unknown): string | undefined => {
  if (cause instanceof Error && cause.message.length > 0) return maskText(cause.message)
  return undefined
}

/**
 * A connection setting that was not given, so its default was used: shown in a connect
 * error, so that `localhost:5432` is not mistaken for a setting the user made.
 *
 * @since 0.2.0
 * @category models
 */
export interface DefaultedSetting {
  /** `host`, `port`, `database` or `user`. */
  readonly field: string
  /** The default's value. */
  readonly value: string
  /** Where it could have been set: the URL's name, then the setting's own (`["DATABASE_URL", "PGHOST"]`). */
  readonly setWith: readonly [url: string, own: string]
}

const and = (items: ReadonlyArray<string>): string =>
  items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)!}`

const defaultsText = (defaults: ReadonlyArray<DefaultedSetting> | undefined): string => {
  if (defaults === undefined || defaults.length === 0) return ""
  const one = defaults.length === 1
  const urls = [...new Set(defaults.map((d) => d.setWith[0]))]
  return `; ${and(defaults.map((d) => `${d.field} ${d.value}`))} ${one ? "is a default" : "are defaults"}, as ` +
    `nothing set ${one ? "it" : "them"} (set ${urls.join(" or ")}, or ${and(defaults.map((d) => d.setWith[1]))})`
}

/**
 * A connection attempt failed.
 *
 * **Details**
 *
 * `reason` classifies the failure from the Node error code (ECONNREFUSED, ENOTFOUND,
 * ETIMEDOUT…), the SQLSTATE of the server's answer (28P01, 3D000, 53300, 08xxx…) or the TLS
 * error. `host`, `port`, `database` and `user` say where it was going; the password is never
 * stored here.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgConnectError extends ExpectedError("PgConnectError")<{
  readonly reason: PgConnectErrorReason
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  /** The settings above that nobody gave, whose defaults were used (set by `PgPool`). */
  readonly defaults?: ReadonlyArray<DefaultedSetting> | undefined
  readonly cause?: unknown
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const detail = causeText(this.cause)
    return `could not connect to PostgreSQL at ${this.host}:${this.port} (database "${this.database}", user "${this.user}"): ${
      this.reason === "Timeout" ? "timed out" : this.reason
    }${detail === undefined ? "" : ` (${detail})`}; ${connectAdvice[this.reason]}${defaultsText(this.defaults)}`
  }
}

/**
 * The server rejected a statement, or a statement could not be sent (for example a parameter
 * that cannot be serialised). The connection is still usable.
 *
 * **Details**
 *
 * `code` is the SQLSTATE (for example `57014` after a cancel or `statement_timeout`, `23505`
 * for a unique violation), `undefined` when the error did not come from the server.
 * `serverMessage`, `detail`, `hint`, `position` and the other fields are the server's
 * ErrorResponse fields, unchanged.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgQueryError extends ExpectedError("PgQueryError")<{
  readonly code: string | undefined
  readonly serverMessage: string
  readonly severity?: string | undefined
  readonly detail?: string | undefined
  readonly hint?: string | undefined
  readonly position?: string | undefined
  readonly where?: string | undefined
  readonly schema?: string | undefined
  readonly table?: string | undefined
  readonly column?: string | undefined
  readonly dataType?: string | undefined
  readonly constraint?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const code = this.code === undefined ? "" : ` (SQLSTATE ${this.code})`
    const hint = this.hint === undefined ? "" : `; hint: ${this.hint}`
    const advice = this.code === "57014"
      ? "; the statement was cancelled (interrupt, timeout or statement_timeout) and had no effect"
      : this.code === undefined
      ? "; the statement was not sent, fix its text or parameters"
      : ""
    return `${this.serverMessage}${code}${hint}${advice}`
  }
}

/**
 * Why a connection was lost.
 *
 * - `Closed`: the socket was closed or reset, or the connection was already dead when used.
 * - `Terminated`: the server ended the session with a fatal error (class 08, 57P01
 *   `pg_terminate_backend`/admin shutdown, 57P02 crash, 57P03).
 * - `CancelUnconfirmed`: a cancel was not confirmed in time, so the socket was destroyed.
 *
 * @since 0.1.0
 * @category models
 */
export type PgConnectionLostReason = "Closed" | "Terminated" | "CancelUnconfirmed"

/**
 * The connection died while in use, or was used after it died. The outcome of the statement
 * that was running is unknown: retry it on a new connection only if it is idempotent.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgConnectionLost extends ExpectedError("PgConnectionLost")<{
  readonly reason: PgConnectionLostReason
  readonly connectionId: number
  readonly processId: number
  /** The SQLSTATE of the server's fatal error, if it sent one. */
  readonly code?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const what = this.reason === "Terminated"
      ? `the server ended the session${this.code === undefined ? "" : ` (SQLSTATE ${this.code})`}`
      : this.reason === "CancelUnconfirmed"
      ? "a cancel was not confirmed in time, so the connection was closed"
      : "the socket was closed"
    const detail = causeText(this.cause)
    return `PostgreSQL connection #${this.connectionId} (backend pid ${this.processId}) was lost: ${what}${
      detail === undefined ? "" : ` (${detail})`
    }; the statement's outcome is unknown, retry it on a new connection only if it is idempotent`
  }
}

/**
 * A statement did not finish within the client-side query timeout. It was cancelled on the
 * server (CancelRequest on a side socket) before this error was raised, so it had no effect
 * unless it committed on its own.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgQueryTimeout extends ExpectedError("PgQueryTimeout")<{
  readonly timeoutMillis: number
}> {
  /**
   * Marks the error as one of this family.
   *
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `the statement did not finish within ${this.timeoutMillis} ms and was cancelled on the server; ` +
      "make it faster (an index, a smaller batch) or raise queryTimeout"
  }
}

/**
 * Any error of this package.
 *
 * @since 0.1.0
 * @category errors
 */
export type PgError = PgConnectError | PgQueryError | PgConnectionLost | PgQueryTimeout

/**
 * Tells whether a value is one of this package's errors.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isPgError = (u: unknown): u is PgError => Predicate.hasProperty(u, TypeId)
