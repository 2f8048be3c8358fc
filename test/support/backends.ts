/**
 * Server-side facts for tests, read from a separate connection (never through the pool under
 * test). `eventuallyNoBackends` is the one allowed poll: bounded, and over an external system.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { setTimeout as sleep } from "node:timers/promises"
import pg from "pg"

/** A backend as `pg_stat_activity` shows it. */
export interface Backend {
  readonly pid: number
  readonly state: string | null
  readonly query: string
}

/** Runs `f` with a fresh connection of its own (never one of a pool under test). */
export const withClient = async <A>(url: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url, application_name: "scoped-pool-observer" })
  client.on("error", () => undefined)
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

/**
 * Checks the server every 20 ms (wall clock, so that it runs inside `it.effect` too) until
 * `check` returns undefined, and fails with the message it returned last after `within`.
 * The one allowed poll: bounded, and over an external system.
 */
export const pollServer = (
  url: string,
  within: Duration.DurationInput,
  check: (client: pg.Client) => Promise<string | undefined>
): Effect.Effect<void, Error> =>
  Effect.tryPromise({
    try: () =>
      withClient(url, async (client) => {
        const deadline = Date.now() + Duration.toMillis(within)
        for (;;) {
          const failure = await check(client)
          if (failure === undefined) return
          if (Date.now() >= deadline) throw new Error(failure)
          await sleep(20)
        }
      }),
    catch: (error) => error instanceof Error ? error : new Error(String(error))
  })

/** The backends that carry `applicationName`, read once. */
export const backendsOf = (url: string, applicationName: string): Promise<ReadonlyArray<Backend>> =>
  withClient(url, async (client) =>
    (await client.query<Backend>(
      "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
      [applicationName]
    )).rows)

/**
 * Polls `pg_stat_activity` (every 20 ms, wall clock) until no backend carries `applicationName`
 * and fails with the leftovers if some are still there after `within`. Runs on the wall clock
 * even inside `it.effect`, whose TestClock would otherwise stop it.
 */
export const eventuallyNoBackends = (
  url: string,
  applicationName: string,
  options: { readonly within: Duration.DurationInput }
): Effect.Effect<void, Error> =>
  pollServer(url, options.within, async (client) => {
    const { rows } = await client.query<Backend>(
      "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
      [applicationName]
    )
    return rows.length === 0
      ? undefined
      : `${rows.length} backend(s) of "${applicationName}" still on the server after ${
        Duration.format(options.within)
      }: ${JSON.stringify(rows)}`
  })

/**
 * Polls `pg_stat_activity` (every 20 ms, wall clock) until at least `count` backends of
 * `applicationName` are active running a statement that matches `queryLike`; fails after `within`.
 */
export const eventuallyActive = (
  url: string,
  applicationName: string,
  options: { readonly count: number; readonly queryLike: string; readonly within: Duration.DurationInput }
): Effect.Effect<void, Error> =>
  pollServer(url, options.within, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE $2",
      [applicationName, options.queryLike]
    )
    return rows[0]!.n >= options.count
      ? undefined
      : `only ${rows[0]!.n} of ${options.count} backends of "${applicationName}" active after ${
        Duration.format(options.within)
      }`
  })

/** How many backends of `applicationName` are active running a statement that matches `queryLike`, read once. */
export const activeCount = (url: string, applicationName: string, queryLike: string): Promise<number> =>
  withClient(url, async (client) =>
    (await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE $2",
      [applicationName, queryLike]
    )).rows[0]!.n)

/** The `state` of every backend of `applicationName` (e.g. "idle", "idle in transaction"), read once. */
export const statesOf = (url: string, applicationName: string): Promise<ReadonlyArray<string>> =>
  withClient(url, async (client) =>
    (await client.query<{ state: string }>(
      "SELECT state FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid",
      [applicationName]
    )).rows.map((r) => r.state))
