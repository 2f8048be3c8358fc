/**
 * libpq's connection parameters, read from a parsed connection string (`connString.ts`) into
 * the settings of a connection. Every keyword is either supported, with libpq's meaning, or
 * fails naming it: none is ignored.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import type * as Tls from "node:tls"
import type { Parsed } from "./connString.js"
import { secretKeywords } from "./connString.js"

/** What a connection string says, in the pool's terms. @internal */
export interface Settings {
  readonly host?: string
  readonly port?: number
  readonly database?: string
  readonly user?: string
  readonly password?: Redacted.Redacted<string>
  readonly ssl?: boolean | Tls.ConnectionOptions
  /** The `sslmode` (or pg's `ssl=`) as written, for messages. */
  readonly sslSetting?: string
  /** libpq's `sslmode`, when one was given (pg's `no-verify` is carried by `ssl` alone). */
  readonly sslmode?: "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
  readonly applicationName?: string
  readonly fallbackApplicationName?: string
  readonly connectTimeout?: Duration.Duration
  readonly keepAlive?: boolean
  readonly keepAliveInitialDelay?: Duration.Duration
  /** `options=-c name=value …`: settings sent in the startup packet. */
  readonly startupParameters?: Readonly<Record<string, string>>
}

/** A parameter that is wrong: `param` is its keyword, or `undefined` when it must not be named. @internal */
export interface ParamError {
  readonly param: string | undefined
  readonly expected: string
  readonly value: unknown
}

/** @internal */
export type Result = { readonly _tag: "Ok"; readonly value: Settings } | {
  readonly _tag: "Error"
  readonly error: ParamError
}

/** libpq keywords this pool does not support, with what to do instead. */
const unsupported: Readonly<Record<string, string>> = {
  hostaddr: "give the address as host",
  passfile: "give the password in the URL or as the password option",
  service: "give the connection's parameters directly (pg_service.conf is not read)",
  require_auth: "remove it (the server's pg_hba.conf decides the method)",
  replication: "remove it (replication connections are not pooled)",
  keepalives_interval: "remove it: Node.js cannot set the interval of keepalive probes (the OS setting applies)",
  keepalives_count: "remove it: Node.js cannot set the number of keepalive probes (the OS setting applies)",
  tcp_user_timeout: "remove it: Node.js cannot set TCP_USER_TIMEOUT; connectTimeout and keepalives bound the wait",
  sslpassword: "decrypt the key file, or pass node TLS options (key, passphrase) as the ssl option",
  sslkeylogfile: "remove it",
  sslcertmode: "remove it, or pass node TLS options as the ssl option",
  sslcrl: "pass node TLS options (crl) as the ssl option",
  sslcrldir: "pass node TLS options (crl) as the ssl option",
  ssl_min_protocol_version: "pass node TLS options (minVersion) as the ssl option",
  ssl_max_protocol_version: "pass node TLS options (maxVersion) as the ssl option",
  requirepeer: "remove it",
  krbsrvname: "remove it: GSSAPI/Kerberos is not supported",
  gsslib: "remove it: GSSAPI/Kerberos is not supported",
  gssdelegation: "remove it: GSSAPI/Kerberos is not supported",
  load_balance_hosts: "remove it: one host is supported",
  uselibpqcompat: "remove it: connection strings always follow libpq"
}

/** Values accepted because they mean what this pool does anyway; any other value is unsupported. */
const fixed: Readonly<Record<string, { readonly values: ReadonlyArray<string>; readonly why: string }>> = {
  client_encoding: { values: ["utf8", "utf-8", "unicode"], why: "the client speaks UTF8 only" },
  target_session_attrs: { values: ["any"], why: "one host is supported, so any server is the one" },
  gssencmode: { values: ["disable", "prefer"], why: "GSSAPI encryption is not supported (prefer falls back to none)" },
  channel_binding: { values: ["disable", "prefer"], why: "SCRAM channel binding is not used (prefer allows that)" },
  sslnegotiation: { values: ["postgres"], why: "TLS is negotiated the PostgreSQL way (SSLRequest)" },
  sslcompression: { values: ["0"], why: "TLS compression is not supported" },
  sslsni: { values: ["1"], why: "SNI is always sent for host names" }
}

const supported = [
  "host",
  "port",
  "dbname",
  "user",
  "password",
  "sslmode",
  "ssl",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "application_name",
  "fallback_application_name",
  "connect_timeout",
  "keepalives",
  "keepalives_idle",
  "options"
] as const

const sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full", "no-verify"] as const

const looksSecret = (key: string) => /pass|pwd|secret|token|key/i.test(key)

/**
 * Reads the parameters of a parsed connection string.
 *
 * @internal
 */
export const settingsOf = (parsed: Parsed): Result => {
  const params = parsed.params
  const fail = (param: string, expected: string, value: unknown): Result => ({
    _tag: "Error",
    error: parsed.afterSecret.has(param)
      ? {
        param: undefined,
        expected: "a known parameter with a valid value; one after the password is not (if the password holds " +
          (parsed.kind === "uri" ? "'&', percent-encode it as %26)" : "spaces, quote it: password='…')"),
        value: "(not shown)"
      }
      : { param, expected, value: secretKeywords.has(param) || looksSecret(param) ? "(not shown)" : value }
  })

  for (const [key, value] of params) {
    if ((supported as ReadonlyArray<string>).includes(key)) continue
    const instead = unsupported[key]
    if (instead !== undefined) return fail(key, `left out: it is not supported here; ${instead}`, value)
    const only = fixed[key]
    if (only !== undefined) {
      if (only.values.includes(value.toLowerCase())) continue
      return fail(key, `${only.values.join(" or ")} (${only.why})`, value)
    }
    return fail(
      key,
      `a libpq connection parameter (${supported.join(", ")}, …); it is unknown, so remove it or fix its spelling`,
      value
    )
  }

  const settings: {
    -readonly [K in keyof Settings]: Settings[K]
  } = {}
  const host = params.get("host")
  if (host !== undefined && host !== "") {
    if (host.includes(",")) return fail("host", "one host (several hosts are not supported)", host)
    settings.host = host
  }
  const port = params.get("port")
  if (port !== undefined && port !== "") {
    const n = /^\d+$/.test(port) ? Number(port) : Number.NaN
    if (!(n >= 1 && n <= 65_535)) return fail("port", "an integer in [1, 65535]", port)
    settings.port = n
  }
  const dbname = params.get("dbname")
  if (dbname !== undefined && dbname !== "") settings.database = dbname
  const user = params.get("user")
  if (user !== undefined && user !== "") settings.user = user
  const password = params.get("password")
  if (password !== undefined) settings.password = Redacted.make(password)
  const appName = params.get("application_name")
  if (appName !== undefined) settings.applicationName = appName
  const fallback = params.get("fallback_application_name")
  if (fallback !== undefined) settings.fallbackApplicationName = fallback

  const connectTimeout = params.get("connect_timeout")
  if (connectTimeout !== undefined) {
    const n = /^\s*\d+\s*$/.test(connectTimeout) ? Number(connectTimeout) : Number.NaN
    if (!(n >= 1)) {
      return fail(
        "connect_timeout",
        "a whole number of seconds >= 1, like 10 (0, which libpq reads as \"wait forever\", is not allowed: " +
          "every wait here is bounded)",
        connectTimeout
      )
    }
    // As libpq: the least timeout is 2 seconds.
    settings.connectTimeout = Duration.seconds(Math.max(2, n))
  }
  const keepalives = params.get("keepalives")
  if (keepalives !== undefined) {
    if (keepalives !== "0" && keepalives !== "1") return fail("keepalives", "1 (on) or 0 (off)", keepalives)
    settings.keepAlive = keepalives === "1"
  }
  const idle = params.get("keepalives_idle")
  if (idle !== undefined) {
    const n = /^\s*\d+\s*$/.test(idle) ? Number(idle) : Number.NaN
    if (!(n >= 1)) return fail("keepalives_idle", "a whole number of seconds >= 1, like 30", idle)
    settings.keepAliveInitialDelay = Duration.seconds(n)
  }
  const options = params.get("options")
  if (options !== undefined) {
    const startup = parseStartupOptions(options)
    if (typeof startup === "string") return fail("options", startup, options)
    if (Object.keys(startup).length > 0) settings.startupParameters = startup
  }

  const ssl = sslOf(params)
  if (ssl._tag === "Error") return fail(ssl.param, ssl.expected, params.get(ssl.param))
  if (ssl.ssl !== undefined) settings.ssl = ssl.ssl
  if (ssl.setting !== undefined) settings.sslSetting = ssl.setting
  const mode = params.get("sslmode")
  if (mode !== undefined && mode !== "no-verify") settings.sslmode = mode as NonNullable<Settings["sslmode"]>
  return { _tag: "Ok", value: settings }
}

type SslResult =
  | { readonly _tag: "Ok"; readonly ssl: boolean | Tls.ConnectionOptions | undefined; readonly setting?: string }
  | { readonly _tag: "Error"; readonly param: string; readonly expected: string }

const readFile = (path: string): Buffer | string => {
  try {
    return Fs.readFileSync(path)
  } catch (error) {
    return (error as { code?: string }).code ?? "unreadable"
  }
}

/**
 * libpq's TLS rules: `sslmode` (`disable` connects without TLS; `allow` tries without TLS first,
 * `prefer` with TLS first, each falling back to the other — the wire client does that, from
 * `Settings.sslmode` — `require` encrypts without checking the certificate unless `sslrootcert` is given,
 * `verify-ca` checks the chain, `verify-full` also the host name), plus pg's `ssl=true|false`
 * and `sslmode=no-verify`; `sslrootcert` (a file, or `system` for the system's authorities),
 * `sslcert` and `sslkey` (a client certificate).
 */
const sslOf = (params: ReadonlyMap<string, string>): SslResult => {
  const mode = params.get("sslmode")
  const flag = params.get("ssl")
  if (mode !== undefined && !(sslModes as ReadonlyArray<string>).includes(mode)) {
    return { _tag: "Error", param: "sslmode", expected: `one of ${sslModes.join(", ")}` }
  }
  if (flag !== undefined) {
    if (!["true", "1", "false", "0"].includes(flag)) {
      return { _tag: "Error", param: "ssl", expected: "true or false (pg's spelling; libpq's is sslmode)" }
    }
    if (mode !== undefined) {
      return { _tag: "Error", param: "ssl", expected: "left out when sslmode is given (give one of ssl and sslmode)" }
    }
  }
  const rootcert = params.get("sslrootcert")
  const cert = params.get("sslcert")
  const key = params.get("sslkey")
  if ((cert === undefined) !== (key === undefined)) {
    return {
      _tag: "Error",
      param: cert === undefined ? "sslkey" : "sslcert",
      expected: "given together with " + (cert === undefined ? "sslcert" : "sslkey") +
        " (a client certificate and its key)"
    }
  }
  const system = rootcert === "system"
  const effective = mode ?? (system ? "verify-full" : flag === "true" || flag === "1" ? "verify-full" : undefined)
  if (system && effective !== "verify-full") {
    return { _tag: "Error", param: "sslmode", expected: "verify-full with sslrootcert=system (as libpq)" }
  }
  const encrypted = effective === "require" || effective === "verify-ca" || effective === "verify-full" ||
    effective === "no-verify"
  const files = rootcert !== undefined || cert !== undefined
  if (!encrypted) {
    if (files) {
      return {
        _tag: "Error",
        param: rootcert !== undefined ? "sslrootcert" : "sslcert",
        expected: "used with sslmode=require, verify-ca or verify-full (without one of them the connection is not " +
          "encrypted, so the file would be ignored)"
      }
    }
    const off = effective === "disable" || effective === "allow" || effective === "prefer" || flag !== undefined
    return {
      _tag: "Ok",
      ssl: off ? false : undefined,
      ...(mode ?? flag) !== undefined ? { setting: mode ?? `ssl=${flag}` } : {}
    }
  }
  const options: { -readonly [K in keyof Tls.ConnectionOptions]: Tls.ConnectionOptions[K] } = {}
  for (
    const [param, path, field] of [["sslrootcert", rootcert, "ca"], ["sslcert", cert, "cert"], [
      "sslkey",
      key,
      "key"
    ]] as const
  ) {
    if (path === undefined || (param === "sslrootcert" && system)) continue
    const content = readFile(path)
    if (typeof content === "string") {
      return { _tag: "Error", param, expected: `a readable file (reading it failed: ${content})` }
    }
    options[field] = content
  }
  const verifyChain = effective === "verify-ca" || effective === "verify-full" ||
    (effective === "require" && rootcert !== undefined)
  if (!verifyChain) options.rejectUnauthorized = false
  else if (effective !== "verify-full") options.checkServerIdentity = () => undefined
  const ssl = Object.keys(options).length === 0 ? true : options
  return { _tag: "Ok", ssl, setting: mode ?? `ssl=${flag}` }
}

/**
 * Reads libpq's `options` value: command-line switches for the server, separated by spaces
 * (a backslash escapes a space or a backslash). `-c name=value`, `-cname=value` and
 * `--name=value` set a setting; any other switch is not supported. Returns the settings, or
 * what was expected.
 *
 * @internal
 */
export const parseStartupOptions = (text: string): Record<string, string> | string => {
  const args: Array<string> = []
  let current: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === "\\" && i + 1 < text.length) {
      current = (current ?? "") + text[++i]
    } else if (/\s/.test(c)) {
      if (current !== undefined) args.push(current)
      current = undefined
    } else {
      current = (current ?? "") + c
    }
  }
  if (current !== undefined) args.push(current)
  const settings: Record<string, string> = {}
  const setting = (arg: string): string | undefined => {
    const eq = arg.indexOf("=")
    const name = (eq === -1 ? arg : arg.slice(0, eq)).replace(/-/g, "_").toLowerCase()
    if (eq === -1 || !/^[a-z_][a-z0-9_$.]*$/.test(name)) {
      return "server settings written -c name=value (or --name=value), separated by spaces (escape a space " +
        "inside a value as \\ )"
    }
    settings[name] = arg.slice(eq + 1)
    return undefined
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    let failure: string | undefined
    if (arg === "-c") {
      const next = args[++i]
      failure = next === undefined ? "a name=value after -c" : setting(next)
    } else if (arg.startsWith("-c")) {
      failure = setting(arg.slice(2))
    } else if (arg.startsWith("--")) {
      failure = setting(arg.slice(2))
    } else {
      failure = "server settings written -c name=value (or --name=value); other server switches are not supported"
    }
    if (failure !== undefined) return failure
  }
  return settings
}

/**
 * Renders settings as libpq's `options` value, `-c name=value` each, spaces and backslashes
 * escaped (what `pg` sends as the `options` startup parameter).
 *
 * @internal
 */
export const renderStartupOptions = (settings: Readonly<Record<string, string>>): string =>
  Object.entries(settings).map(([name, value]) => `-c ${name}=${value.replace(/([\\\s])/g, "\\$1")}`).join(" ")

/**
 * A PostgreSQL time setting (`statement_timeout` and the like) in milliseconds: a number with
 * an optional unit (us, ms, s, min, h, d; none means ms). `undefined` if it is not one.
 *
 * @internal
 */
export const pgMillis = (text: string): number | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/.exec(text)
  if (match === null) return undefined
  const factor = { us: 0.001, ms: 1, s: 1_000, min: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "ms"]!
  return Number(match[1]) * factor
}
