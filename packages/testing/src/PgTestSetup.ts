/**
 * The vitest global setup of the kit: one PostgreSQL for the whole test run — an embedded
 * server, or the one `TEST_DATABASE_URL` names — and, when you give a `seed`, a template
 * database seeded once per run (your migrations run a single time), from which `PgTest.layer`
 * copies a fresh database for every test file.
 *
 * The embedded server is always stopped and its dir removed: when the run ends, when it
 * fails, and on SIGINT/SIGTERM. Use the ready-made module in `vitest.config.ts`:
 * `globalSetup: ["@scoped-pool/testing/globalSetup"]`, or write your own setup file with
 * {@link make} to seed the template.
 *
 * @since 0.2.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import type { TestProject } from "vitest/node"
import * as Database from "./internal/database.js"
import * as PgServer from "./PgServer.js"

/**
 * What the global setup hands to every test file (through vitest's `provide`/`inject`, under
 * the key `"@scoped-pool/testing"`): the server's URL and the seeded template, if any.
 *
 * @since 0.2.0
 * @category models
 */
export interface ProvidedContext {
  readonly url: string
  readonly template: string | null
}

// Inside the augmentation, `ProvidedContext` is vitest's own interface.
type KitContext = ProvidedContext

declare module "vitest" {
  export interface ProvidedContext {
    /** The server and template of `@scoped-pool/testing`'s global setup. */
    readonly "@scoped-pool/testing": KitContext
  }
}

/**
 * Options of {@link make} and {@link start}.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Run once per test run on a template database, before any test file starts: create your
   * schema, run your migrations, insert fixtures. Every `PgTest.layer` database is a copy of it.
   */
  readonly seed?: Effect.Effect<unknown, unknown, PgPool.PgPool | SqlClient.SqlClient | PgClient.PgClient> | undefined
  /** Options of the embedded server (ignored when `TEST_DATABASE_URL` is set). */
  readonly server?: PgServer.StartOptions | undefined
  /** A server to use instead of an embedded one. Default: the `TEST_DATABASE_URL` variable. */
  readonly databaseUrl?: string | undefined
}

/**
 * A started setup: the server's URL, the seeded template (if any), and `stop`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Handle {
  /** Connects to the server's maintenance database (`postgres`) as a superuser. */
  readonly url: string
  /** The template database seeded by `seed`, or `null` without a seed. */
  readonly template: string | null
  /** Drops the template and stops the embedded server; idempotent. */
  readonly stop: () => Promise<void>
}

/** Runs `f` on an admin pool of its own (one connection), closed when `f` ends. */
const withAdmin = <A, E>(url: string, f: (sql: PgPool.PgPool.Service["sql"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(PgPool.PgPool, (pg) => f(pg.sql)).pipe(
    Effect.provide(PgPool.layer({ url: Redacted.make(url), max: 1, applicationName: "scoped-pool-testing-setup" }))
  )

const dropTemplate = (url: string, template: string) =>
  withAdmin(url, (sql) => Database.dropDatabase(sql, template)).pipe(Effect.ignoreLogged)

/** Creates the template database and runs `seed` in it; if the seed fails, the template is dropped. */
const seedTemplate = (url: string, seed: NonNullable<Options["seed"]>) =>
  Effect.gen(function*() {
    const template = Database.databaseNameOf("template")
    yield* withAdmin(url, (sql) => Database.createDatabase(sql, template, null))
    yield* Effect.asVoid(seed).pipe(
      Effect.provide(
        PgPool.layer({
          url: Redacted.make(Database.withDatabase(url, template)),
          applicationName: "scoped-pool-testing-seed",
          max: 4
        })
      ),
      // Not `onError`: its cleanup runs uninterruptibly, and a pool built there never answers
      // today (a PgPool used inside Effect.uninterruptible hangs).
      Effect.tapErrorCause(() => dropTemplate(url, template))
    )
    return template
  })

/**
 * Starts the server (or uses `databaseUrl` / `TEST_DATABASE_URL`) and seeds the template; if
 * the seed fails, the server is stopped and the promise rejects with the seed's error.
 *
 * @since 0.2.0
 * @category constructors
 */
export const start = async (options: Options = {}): Promise<Handle> => {
  const external = options.databaseUrl ?? process.env.TEST_DATABASE_URL
  const server = external !== undefined && external !== "" ? undefined : await PgServer.start(options.server)
  const url = server?.url ?? external!
  // The setup's own runtime, for its life: whatever it runs ends with it (no default runtime).
  const runtime = ManagedRuntime.make(Layer.empty)
  let template: string | null = null
  if (options.seed !== undefined) {
    try {
      template = await runtime.runPromise(seedTemplate(url, options.seed))
    } catch (error) {
      await runtime.dispose()
      await server?.stop()
      throw error
    }
  }
  let stopped = false
  return {
    url,
    template,
    stop: async () => {
      if (stopped) return
      stopped = true
      // An embedded server goes away with its template; an external one keeps nothing of ours.
      try {
        if (server === undefined && template !== null) await runtime.runPromise(dropTemplate(url, template))
      } finally {
        await runtime.dispose()
        await server?.stop()
      }
    }
  }
}

/**
 * A vitest `globalSetup` function: starts the setup, hands it to the test files (read by
 * `PgTest.layer`), and stops it when the run ends.
 *
 * **Example** (`test/globalSetup.ts`, seeding the template with migrations)
 *
 * ```ts
 * import { PgTestSetup } from "@scoped-pool/testing"
 * import { Effect } from "effect"
 * import { SqlClient } from "@effect/sql"
 *
 * export default PgTestSetup.make({
 *   seed: Effect.gen(function*() {
 *     const sql = yield* SqlClient.SqlClient
 *     yield* sql`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL)`
 *   })
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}) => async (project: TestProject): Promise<() => Promise<void>> => {
  const handle = await start(options)
  project.provide(Database.contextKey, { url: handle.url, template: handle.template })
  return handle.stop
}
