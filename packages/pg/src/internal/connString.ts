/**
 * Connection strings as libpq reads them: a URI (`postgres://user:password@host:port/dbname?k=v`)
 * or `key=value` pairs (`host=db dbname=app password='a b'`), turned into libpq keywords.
 *
 * The URI's structure comes from the WHATWG URL parser; its parts and query are then read by
 * libpq's rules (percent-decoding, `+` is not a space, a socket directory as the host). What a
 * WHATWG parser accepts but libpq would misread — a raw `@` after the host (an unencoded
 * password holding `/`, `?`, `#` or `@`), a fragment — is rejected, because the pieces of the
 * password would otherwise land in the host or the database name and be shown in messages.
 *
 * No error here shows the text it was given: an error names the part that is wrong, and the
 * `masked` form of a string that parsed is rebuilt from its parts with every secret replaced.
 *
 * @internal
 */

/** The keywords whose values are secrets: never shown. @internal */
export const secretKeywords: ReadonlySet<string> = new Set(["password", "sslpassword"])

/** A connection string read into libpq keywords. @internal */
export interface Parsed {
  readonly kind: "uri" | "keywords"
  /** libpq keywords (`host`, `port`, `dbname`, `user`, `password`, query or `key=value` parameters), in order. */
  readonly params: ReadonlyMap<string, string>
  /** The string rebuilt from its parts, every secret shown as `***`: safe for messages. */
  readonly masked: string
  /**
   * Keywords read after an unquoted secret (in a `key=value` string, or after `password` in a
   * URI's query): if the secret held a space or an `&`, they are pieces of it, so messages must
   * not name them.
   */
  readonly afterSecret: ReadonlySet<string>
}

/** Why a string could not be read; `expected` says what to write instead, and shows none of the text. @internal */
export interface ParseError {
  readonly expected: string
}

/** @internal */
export type ParseResult = { readonly _tag: "Ok"; readonly value: Parsed } | {
  readonly _tag: "Error"
  readonly error: ParseError
}

const ok = (value: Parsed): ParseResult => ({ _tag: "Ok", value })
const error = (expected: string): ParseResult => ({ _tag: "Error", error: { expected } })

const encodeAdvice = "percent-encode reserved characters in each part (encodeURIComponent: @ → %40, / → %2F, " +
  ": → %3A, ? → %3F, # → %23, % → %25, space → %20)"

/** `postgres://` or `postgresql://`, as libpq; any letter case. @internal */
export const isUri = (text: string): boolean => /^postgres(?:ql)?:\/\//i.test(text)

/** Looks like an attempt at a URL that is not one (`postgres:/…`, `postgres//…`, `mysql://…`). */
const looksLikeUrl = (text: string): boolean =>
  /^\s*postgres(?:ql)?(?::|\/)/i.test(text) || /^[a-z][a-z0-9+.-]*:\/\//i.test(text.trim())

/**
 * Reads a URI or a `key=value` string.
 *
 * @internal
 */
export const parse = (text: string): ParseResult => {
  if (isUri(text)) return parseUri(text)
  if (looksLikeUrl(text)) {
    return error(
      /^[a-z][a-z0-9+.-]*:\/\//i.test(text.trim()) && !/^\s*postgres/i.test(text)
        ? "a postgres:// or postgresql:// URL (the URL given is not shown: it may hold a password)"
        : "a URL that starts with postgres:// or postgresql:// (two slashes after the colon), or a key=value " +
          "connection string (the text given is not shown: it may hold a password)"
    )
  }
  return parseKeywords(text)
}

const decode = (part: string): string | undefined => {
  try {
    return decodeURIComponent(part)
  } catch {
    return undefined
  }
}

const uriAuthority = (text: string): string => {
  const rest = text.slice(text.indexOf("//") + 2)
  const end = rest.search(/[/?#]/)
  return end === -1 ? rest : rest.slice(0, end)
}

const parseUri = (text: string): ParseResult => {
  const authority = uriAuthority(text)
  const hostPart = authority.slice(authority.lastIndexOf("@") + 1)
  if (hostPart.includes(",")) {
    return error("a URL with one host: several hosts (host1,host2) are not supported; give one host")
  }
  if (hostPart.endsWith(":")) {
    return error("a URL whose host is followed by a port number, or by no ':' at all (a ':' with no port follows it)")
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return error(
      "a URL like postgres://user:password@host:5432/database; this one is malformed (it is not shown: it may " +
        `hold a password): ${encodeAdvice}, and check that the port is a number in [1, 65535]`
    )
  }
  // A raw "@" after the host means the userinfo ended too early: an unencoded "/", "?" or "#"
  // in the password (or user), whose pieces now sit in the host, path or query.
  if (url.pathname.includes("@") || url.search.includes("@") || url.hash !== "") {
    return error(
      "a URL with percent-encoded parts: a raw '@' or '#' follows the host, so the user or password probably " +
        `holds an unencoded '/', '?', '#' or '@' (the URL is not shown: it may hold a password); ${encodeAdvice}`
    )
  }
  // A raw ":" in the database name is a user:password that missed the authority
  // (postgres:///user:password…); a real one is written %3A.
  if (url.pathname.includes(":")) {
    return error(
      "a URL like postgres://user:password@host:5432/database; a ':' follows the host, so the user and password " +
        "are probably outside the authority (the URL is not shown: it may hold a password); write a ':' in a " +
        "database name as %3A"
    )
  }
  const params = new Map<string, string>()
  const shown: Array<string> = []
  const put = (keyword: string, raw: string, what: string): ParseError | undefined => {
    const value = decode(raw)
    if (value === undefined) {
      return {
        expected: `a URL whose ${what} is percent-encoded correctly ('%' followed by two hex digits; write a ` +
          "literal '%' as %25)"
      }
    }
    params.set(keyword, value)
    return undefined
  }
  let failure: ParseError | undefined
  if (url.username !== "") failure ??= put("user", url.username, "user name")
  if (url.password !== "") failure ??= put("password", url.password, "password")
  if (url.hostname !== "") failure ??= put("host", url.hostname.replace(/^\[(.*)\]$/, "$1"), "host")
  if (url.port !== "") params.set("port", url.port)
  if (url.pathname.length > 1) failure ??= put("dbname", url.pathname.slice(1), "database name")
  if (failure !== undefined) return { _tag: "Error", error: failure }

  const afterSecret = new Set<string>()
  let secretSeen = false
  const query = url.search.startsWith("?") ? url.search.slice(1) : url.search
  if (query !== "") {
    for (const pair of query.split("&")) {
      if (pair === "") continue
      const eq = pair.indexOf("=")
      if (eq === -1) {
        return error(
          secretSeen
            ? "a URL whose query parameters are all key=value; one after the password is not (if the password " +
              "holds '&', percent-encode it as %26)"
            : "a URL whose query parameters are all key=value (one has no '=')"
        )
      }
      const key = decode(pair.slice(0, eq))
      const value = decode(pair.slice(eq + 1))
      if (key === undefined || value === undefined) {
        return error("a URL whose query parameters are percent-encoded correctly ('%' followed by two hex digits)")
      }
      if (secretSeen) afterSecret.add(key)
      if (params.has(key)) {
        return error(
          secretSeen ?
            "a URL that gives each parameter once (one after the password is repeated)" :
            `a URL that gives ${key} once (it is given twice)`
        )
      }
      params.set(key, value)
      shown.push(`${encodeURIComponent(key)}=${secretKeywords.has(key) ? "***" : encodeURIComponent(value)}`)
      if (secretKeywords.has(key)) secretSeen = true
    }
  }
  const userinfo = url.username === "" && url.password === ""
    ? ""
    : `${url.username}${url.password === "" ? "" : ":***"}@`
  const masked = `${url.protocol}//${userinfo}${url.hostname}${url.port === "" ? "" : `:${url.port}`}${
    url.pathname.length > 1 ? url.pathname : ""
  }${shown.length === 0 ? "" : `?${shown.join("&")}`}`
  return ok({ kind: "uri", params, masked, afterSecret })
}

const isSpace = (c: string | undefined) =>
  c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v"

const quoteForShow = (value: string): string =>
  value === "" || /[\s'\\]/.test(value) ? `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'` : value

const parseKeywords = (text: string): ParseResult => {
  const params = new Map<string, string>()
  const shown: Array<string> = []
  const afterSecret = new Set<string>()
  // Set once a secret was read unquoted: a space in it would have split it, so the tokens
  // that follow may be pieces of it and are never named.
  let unquotedSecret = false
  let i = 0
  const n = text.length
  for (;;) {
    while (i < n && isSpace(text[i])) i++
    if (i >= n) break
    const start = i
    while (i < n && text[i] !== "=" && !isSpace(text[i])) i++
    const key = text.slice(start, i)
    while (i < n && isSpace(text[i])) i++
    // A keyword is a word: anything else is not key=value (a URL without its scheme, say), and is not shown.
    if (text[i] !== "=" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      return error(
        unquotedSecret
          ? "a key=value connection string; after the password comes a word without '=' — if the password holds " +
            "spaces, quote it: password='…' (with \\' and \\\\ for a quote and a backslash)"
          : params.size === 0
          ? "a postgres:// URL or a key=value connection string like \"host=db dbname=app user=app\" (the text " +
            "given is not shown: it may hold a password)"
          : "a key=value connection string in which every word is key=value (one has no '='); quote values " +
            "that hold spaces: key='a b'"
      )
    }
    i++
    while (i < n && isSpace(text[i])) i++
    let value = ""
    let quoted = false
    if (text[i] === "'") {
      quoted = true
      i++
      let closed = false
      while (i < n) {
        const c = text[i]!
        if (c === "\\" && i + 1 < n) {
          value += text[i + 1]
          i += 2
        } else if (c === "'") {
          i++
          closed = true
          break
        } else {
          value += c
          i++
        }
      }
      if (!closed) {
        return error(
          secretKeywords.has(key) || unquotedSecret
            ? "a key=value connection string whose quoted values end with a quote (a quoted value has none; " +
              "write a quote inside one as \\')"
            : `a key=value connection string whose quoted value of ${key} ends with a quote`
        )
      }
    } else {
      while (i < n && !isSpace(text[i])) {
        if (text[i] === "\\" && i + 1 < n) {
          value += text[i + 1]
          i += 2
        } else {
          value += text[i]
          i++
        }
      }
    }
    if (unquotedSecret) afterSecret.add(key)
    if (params.has(key)) {
      return error(
        unquotedSecret
          ? "a key=value connection string that gives each parameter once (one after the password is repeated; if " +
            "the password holds spaces, quote it: password='…')"
          : `a key=value connection string that gives ${key} once (it is given twice)`
      )
    }
    params.set(key, value)
    shown.push(`${key}=${secretKeywords.has(key) ? "***" : quoteForShow(value)}`)
    if (secretKeywords.has(key) && !quoted) unquotedSecret = true
  }
  return ok({ kind: "keywords", params, masked: shown.join(" "), afterSecret })
}
