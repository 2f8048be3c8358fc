/**
 * Pure classification of PostgreSQL SQLSTATE codes and Node socket/TLS error codes.
 * No I/O, no Effect services: tested directly.
 *
 * @internal
 */

import type { PgConnectErrorReason } from "../PgError.js"

/** The reasons a connection attempt can fail, as `PgConnectError.reason`. @internal */
export type ConnectFailure = PgConnectErrorReason

/**
 * Errors after which the backend is gone or the protocol state is unknown:
 * class 08 (connection exception) and 57P01..57P03 (admin_shutdown, crash_shutdown,
 * cannot_connect_now). `57P04`/`57P05` are also fatal to the session.
 *
 * @internal
 */
export const isFatal = (code: string | undefined): boolean =>
  code !== undefined && (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" ||
    code === "57P04" || code === "57P05")

/**
 * `57014` query_canceled: a CancelRequest or `statement_timeout` ended the statement.
 *
 * @internal
 */
export const isQueryCanceled = (code: string | undefined): boolean => code === "57014"

/**
 * Severity `FATAL` or `PANIC`: the server closes the session after sending the error.
 *
 * @internal
 */
export const isFatalSeverity = (severity: string | undefined): boolean => severity === "FATAL" || severity === "PANIC"

/** @internal */
export const isAuthentication = (code: string | undefined): boolean => code === "28P01" || code === "28000"

/** @internal */
export const isSerializationFailure = (code: string | undefined): boolean => code === "40001" || code === "40P01"

const unreachableCodes = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EAI_AGAIN",
  "EAI_FAIL",
  "ENOENT", // unix socket path does not exist
  "ECONNRESET",
  "EPIPE"
])

const tlsCodes = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "HOSTNAME_MISMATCH"
])

/**
 * Classifies a failed connection attempt from the error's SQLSTATE (`code` of a server
 * ErrorResponse), its Node error code, or, for the few errors `pg` raises as plain
 * `Error`s, its message.
 *
 * @internal
 */
export const classifyConnectError = (
  code: string | undefined,
  message: string | undefined
): ConnectFailure => {
  if (code !== undefined) {
    if (isAuthentication(code)) return "Authentication"
    if (code === "3D000") return "UnknownDatabase"
    if (code === "53300" || code === "53400") return "TooManyConnections"
    if (code === "57P03") return "Unreachable" // the server is starting up or shutting down
    if (code === "ETIMEDOUT" || code === "ECONNABORTED") return "Timeout"
    if (unreachableCodes.has(code)) return "Unreachable"
    if (tlsCodes.has(code) || code.startsWith("ERR_TLS") || code.startsWith("ERR_SSL") || code.startsWith("ERR_OSSL")) {
      return "Tls"
    }
    if (/^[0-9A-Z]{5}$/.test(code)) return code.startsWith("28") ? "Authentication" : "Protocol"
  }
  if (message !== undefined) {
    if (/SSL|TLS|certificate/i.test(message)) return "Tls"
    if (/SASL|SCRAM|password/i.test(message)) return "Authentication"
    if (/timeout expired/i.test(message)) return "Timeout"
    if (/terminated|closed|ECONNRESET/i.test(message)) return "Unreachable"
  }
  return "Protocol"
}
