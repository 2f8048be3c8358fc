/**
 * Masks passwords in text taken from elsewhere (an error's message from a driver or the OS),
 * before it is put in one of our messages. A URL found in the text is read with the URL
 * parser and its password (as written and decoded) replaced; a URL-like token that does not
 * parse is replaced whole, since where its password ends cannot be known. `password=` and
 * `sslpassword=` values of `key=value` strings are replaced too.
 *
 * @internal
 */

const urlToken = /[a-z][a-z0-9+.-]*:\/\/\S*/gi
const keywordSecret = /\b(ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'?|\S*)/gi

const replaceAll = (text: string, secret: string): string => secret.length === 0 ? text : text.split(secret).join("***")

/** @internal */
export const maskText = (text: string): string => {
  const secrets: Array<string> = []
  let masked = text.replace(urlToken, (token) => {
    const scheme = token.slice(0, token.indexOf("://") + 3)
    if (!token.includes("@")) return token
    let url: URL
    try {
      url = new URL(token)
    } catch {
      return `${scheme}***`
    }
    // A raw "@" after the host: the userinfo ended too early, pieces of the password follow.
    if (url.pathname.includes("@") || url.search.includes("@") || url.hash.includes("@")) return `${scheme}***`
    if (url.password === "") return token
    secrets.push(url.password)
    try {
      secrets.push(decodeURIComponent(url.password))
    } catch {
      // kept as written only
    }
    // The userinfo ends at the authority's last "@" and the user name at its first ":", as the parser reads them.
    const rest = token.slice(scheme.length)
    const end = rest.search(/[/?#]/)
    const authority = end === -1 ? rest : rest.slice(0, end)
    const at = authority.lastIndexOf("@")
    const colon = authority.indexOf(":")
    if (at === -1 || colon === -1 || colon > at) return `${scheme}***`
    return `${scheme}${authority.slice(0, colon + 1)}***${authority.slice(at)}${end === -1 ? "" : rest.slice(end)}`
  })
  masked = masked.replace(keywordSecret, (_match, ssl: string | undefined) => `${ssl ?? ""}password=***`)
  // The same password anywhere else in the text.
  for (const secret of secrets) if (secret.length >= 3) masked = replaceAll(masked, secret)
  return masked
}

/**
 * Replaces every occurrence of the given secrets (as written, and percent-encoded) in `text`.
 *
 * @internal
 */
export const maskSecrets = (text: string, secrets: ReadonlyArray<string>): string => {
  let masked = text
  for (const secret of secrets) {
    if (secret.length === 0) continue
    masked = replaceAll(masked, secret)
    const encoded = encodeURIComponent(secret)
    if (encoded !== secret) masked = replaceAll(masked, encoded)
  }
  return masked
}
