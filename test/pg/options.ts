/**
 * PgConnection options from a test server URL.
 */
import * as PgConnection from "@scoped-pool/pg/PgConnection"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

export const optionsFromUrl = (
  url: string,
  applicationName: string,
  overrides: Partial<PgConnection.PgConnectionOptions> = {}
): PgConnection.PgConnectionOptions => {
  const parsed = new URL(url)
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    database: decodeURIComponent(parsed.pathname.slice(1)) || "postgres",
    user: decodeURIComponent(parsed.username),
    password: Redacted.make(decodeURIComponent(parsed.password)),
    applicationName,
    ...overrides
  }
}

/** The password in a test URL, to check it never leaks. */
export const passwordOf = (url: string): string => decodeURIComponent(new URL(url).password)

/**
 * `PgConnection.make` for options known to be valid: a `PoolConfigError` would be a bug in the
 * test, so it is a defect, and what remains to check is the `PgConnectError`.
 */
export const connectValid = (options: PgConnection.PgConnectionOptions) =>
  PgConnection.make(options).pipe(Effect.catchTag("PoolConfigError", (error) => Effect.die(error)))
