/**
 * Helpers for fault-injection tests: killing backends from a separate connection, waiting
 * (bounded, on the server) for killed backends to be gone, a spy on process-level
 * unhandled errors, and a classifier that names an error by its tags, so that a test can
 * collect and count every error it saw.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { pollServer, withClient } from "./backends.js"
import { captureLogs, type LogLine } from "./logs.js"

/**
 * Terminates (`pg_terminate_backend`) the backends of `applicationName` — all of them, or at
 * most `limit` picked at random — from a separate connection; returns their pids.
 */
export const terminateBackends = (
  url: string,
  applicationName: string,
  options: { readonly limit?: number } = {}
): Effect.Effect<ReadonlyArray<number>, Error> =>
  Effect.tryPromise({
    try: () =>
      withClient(url, async (client) =>
        (await client.query<{ pid: number }>(
          `SELECT pid FROM (
             SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()
             ORDER BY random() LIMIT $2
           ) AS picked WHERE pg_terminate_backend(pid)`,
          [applicationName, options.limit ?? 1_000_000]
        )).rows.map((r) => r.pid)),
    catch: (error) => error instanceof Error ? error : new Error(String(error))
  })

/** Polls `pg_stat_activity` (every 20 ms, wall clock) until none of `pids` is left; fails after `within`. */
export const eventuallyGone = (
  url: string,
  pids: ReadonlyArray<number>,
  options: { readonly within: Duration.DurationInput }
): Effect.Effect<void, Error> =>
  pollServer(url, options.within, async (client) => {
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])",
      [pids]
    )
    return rows.length === 0
      ? undefined
      : `backends ${rows.map((r) => r.pid).join(", ")} still on the server after ${Duration.format(options.within)}`
  })

/**
 * Records every `uncaughtException` and `unhandledRejection` of the process while installed,
 * as an Effect scoped resource: the listeners are removed when the scope closes.
 */
export const unhandledSpy = Effect.acquireRelease(
  Effect.sync(() => {
    const seen: Array<string> = []
    const onException = (error: unknown) => seen.push(`uncaughtException: ${String(error)}`)
    const onRejection = (reason: unknown) => seen.push(`unhandledRejection: ${String(reason)}`)
    process.on("uncaughtException", onException)
    process.on("unhandledRejection", onRejection)
    return { seen, onException, onRejection }
  }),
  ({ onException, onRejection }) =>
    Effect.sync(() => {
      process.off("uncaughtException", onException)
      process.off("unhandledRejection", onRejection)
    })
).pipe(Effect.map(({ seen }) => seen as ReadonlyArray<string>))

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && typeof (u as { _tag?: unknown })._tag === "string"
    ? (u as { _tag: string })._tag
    : undefined

/**
 * Names an error by its tag and the tags (and `reason` / `code`) of its causes, outermost
 * first: `SqlError > PoolTimeout > PgConnectError(Unreachable)`. An untyped value is
 * `untyped(<String(value)>)`.
 */
export const classify = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current !== undefined; depth++) {
    const tag = tagOf(current)
    if (tag === undefined) {
      if (depth === 0) return `untyped(${String(current)})`
      break
    }
    const e = current as { reason?: unknown; code?: unknown }
    const detail = typeof e.reason === "string" ? e.reason : typeof e.code === "string" ? e.code : undefined
    parts.push(detail === undefined ? tag : `${tag}(${detail})`)
    current = (current as { cause?: unknown }).cause
  }
  return parts.join(" > ")
}

/** Names how an Exit-like cause ended: the classified failure, or `defect`/`interrupted`. */
export const classifyCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return classify(failure.value)
  if (Cause.isInterruptedOnly(cause)) return "interrupted"
  const defect = Cause.dieOption(cause)
  if (defect._tag === "Some" && tagOf(defect.value) !== undefined) return `defect(${classify(defect.value)})`
  return `defect(${Cause.pretty(cause).split("\n")[0]})`
}

/** Adds one to `key` in a counter record. */
export const count = (counts: Record<string, number>, key: string): void => {
  counts[key] = (counts[key] ?? 0) + 1
}

/** A backend's state and how long its last statement ran (until now when still active), read once. */
export interface StatementTiming {
  readonly state: string | null
  readonly query: string
  /** Seconds from `query_start` to `state_change` (or to now, while active). */
  readonly ranSeconds: number
}

/** The state of backend `pid` and how long its last statement ran; `undefined` when it is gone. */
export const statementTiming = (url: string, pid: number): Effect.Effect<StatementTiming | undefined, Error> =>
  Effect.tryPromise({
    try: () =>
      withClient(url, async (client) =>
        (await client.query<StatementTiming>(
          `SELECT state, query, extract(epoch FROM
             (CASE WHEN state = 'active' THEN clock_timestamp() ELSE state_change END) - query_start
           )::float8 AS "ranSeconds"
           FROM pg_stat_activity WHERE pid = $1`,
          [pid]
        )).rows[0]),
    catch: (error) => error instanceof Error ? error : new Error(String(error))
  })

/** Polls (every 20 ms, wall clock) until backend `pid` is gone or not `active`; fails after `within`. */
export const eventuallyNotActive = (
  url: string,
  pid: number,
  options: { readonly within: Duration.DurationInput }
): Effect.Effect<void, Error> =>
  pollServer(url, options.within, async (client) => {
    const { rows } = await client.query<{ state: string }>(
      "SELECT state FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
      [pid]
    )
    return rows.length === 0 ? undefined : `backend ${pid} still active after ${Duration.format(options.within)}`
  })

/**
 * The error `self` fails with; a success is a defect that says so (without printing the value,
 * which may be a large result).
 */
export const failure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<E, never, R> =>
  Effect.matchEffect(self, {
    onFailure: (error) => Effect.succeed(error),
    onSuccess: () => Effect.dieMessage("expected a failure, but the effect succeeded")
  })

/** Runs a test body with the library's logs captured (kept off the test output) and handed to it. */
export const withLogs = <A, E, R>(body: (logs: ReturnType<typeof captureLogs>) => Effect.Effect<A, E, R>) => {
  const logs = captureLogs()
  return logs.provide(body(logs))
}

/** The captured lines at level Error or Fatal. */
export const errorLines = (logs: ReturnType<typeof captureLogs>): ReadonlyArray<LogLine> =>
  logs.lines.filter((l) => l.level === "ERROR" || l.level === "FATAL")
