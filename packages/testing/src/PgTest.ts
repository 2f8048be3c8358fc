/**
 * PostgreSQL for your own tests, with `@effect/vitest`: `PgTest.layer()` gives each test file a
 * fresh database (a copy of the template your global setup seeded once) and provides
 * `PgPool`, `SqlClient` and `PgClient` on it; when the file ends the pool is closed, the kit
 * checks that no backend of the file's `application_name` is left (the file fails if one is),
 * and the database is dropped.
 *
 * Inside one file, `PgTest.rollback` runs a test in a transaction that is always rolled back,
 * so tests can share the file's database without seeing each other's rows. `PgTest.server`
 * gives a throwaway server for tests that stop, restart or crash it.
 *
 * The pool and the kit's own checks always run on the live clock, also inside `it.effect`
 * (whose TestClock would otherwise freeze every timeout).
 *
 * @since 0.2.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as internal from "./internal/database.js"
import * as PgServer from "./PgServer.js"

/**
 * A backend as `pg_stat_activity` shows it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Backend {
  readonly pid: number
  readonly state: string | null
  readonly query: string
}

/**
 * The test file's database, provided by {@link layer}: its name, URL and `application_name`,
 * and a reader of the server's backends.
 *
 * @since 0.2.0
 * @category tags
 */
export class Database extends Context.Tag("@scoped-pool/testing/PgTest/Database")<Database, Database.Service>() {}

/**
 * The types of the {@link Database} service.
 *
 * @since 0.2.0
 */
export declare namespace Database {
  /**
   * What the test file knows of its database.
   *
   * @since 0.2.0
   * @category models
   */
  export interface Service {
    /** The database's name (`t_<file>_<random>`). */
    readonly name: string
    /** Connects to this database as the superuser, e.g. for a pool or client of your own. */
    readonly url: Redacted.Redacted<string>
    /** The `application_name` of the file's pool, checked at the end of the file. */
    readonly applicationName: string
    /** The backends that carry `applicationName` (or the name given), read once from a separate connection. */
    readonly backends: (applicationName?: string) => Effect.Effect<ReadonlyArray<Backend>, SqlError>
  }
}

/**
 * What went wrong in the kit: `NotConfigured` (no global setup and no `TEST_DATABASE_URL`),
 * `Database` (the file's database could not be created), `BackendsLeft` (a connection of the
 * file was still open on the server after its pools closed).
 *
 * @since 0.2.0
 * @category errors
 */
export class PgTestError extends Data.TaggedError("PgTestError")<{
  readonly reason: "NotConfigured" | "Database" | "BackendsLeft"
  readonly detail: string
  readonly cause?: unknown
}> {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return this.detail
  }
}

/**
 * Options of {@link layer}: the pool's own (`max`, `queryTimeout`, …, see `PgPool.Options`;
 * the URL is the file's database) and the kit's. `connectTimeout` is 30 seconds by default here
 * (PgPool's own default is 5): test runs load their machine — a CI runner with two cores running
 * two test files and their servers once took more than 5 seconds to answer a connection.
 *
 * @since 0.2.0
 * @category models
 */
export interface LayerOptions
  extends Omit<PgPool.Options, "url" | "host" | "port" | "database" | "username" | "password">
{
  /** The pool's `application_name`. Default: `test-<file name>`. */
  readonly applicationName?: string | undefined
  /** How long the end-of-file check waits for the server to end closed sessions. Default: 2 seconds. */
  readonly leftoverWithin?: Duration.DurationInput | undefined
}

/**
 * The `application_name` the kit gives a test file: `test-<file name without .test.ts>`, at
 * most 63 bytes.
 *
 * @since 0.2.0
 * @category utils
 */
export const applicationNameOf = (file: string): string => {
  const path = file.startsWith("file:") ? fileURLToPath(file) : file
  return `test-${Path.basename(path).replace(/\.(test|spec)\.[cm]?[jt]sx?$/, "").replace(/\.[cm]?[jt]sx?$/, "")}`
    .slice(0, 63)
}

interface VitestState {
  readonly provided: internal.SetupContext | undefined
  readonly file: string | undefined
}

// vitest is loaded only when a layer is built (in a test file), so that importing the kit
// from a plain script (for `PgServer`) does not need a running vitest.
const vitestState: Effect.Effect<VitestState> = Effect.promise(() => import("vitest")).pipe(
  Effect.map((vitest): VitestState => {
    const attempt = <A>(f: () => A): A | undefined => {
      try {
        return f()
      } catch {
        return undefined
      }
    }
    return {
      provided: attempt(() => vitest.inject(internal.contextKey)),
      file: attempt(() => vitest.expect.getState().testPath)
    }
  }),
  Effect.catchAllDefect(() => Effect.succeed<VitestState>({ provided: undefined, file: undefined }))
)

const setupContext = (state: VitestState): Effect.Effect<internal.SetupContext, PgTestError> => {
  if (state.provided !== undefined) return Effect.succeed(state.provided)
  const url = process.env.TEST_DATABASE_URL
  const template = process.env.TEST_DATABASE_TEMPLATE
  if (url !== undefined && url !== "") {
    return Effect.succeed({ url, template: template !== undefined && template !== "" ? template : null })
  }
  return Effect.fail(
    new PgTestError({
      reason: "NotConfigured",
      detail: "no test database: add \"@scoped-pool/testing/globalSetup\" (or your own PgTestSetup.make file) " +
        "to globalSetup in vitest.config.ts, or set TEST_DATABASE_URL"
    })
  )
}

// The kit's pools and checks measure real time, whatever clock the test runs on.
const liveClock = Layer.locallyWith(DefaultServices.currentServices, Context.add(Clock.Clock, Clock.make()))

type PoolLayerError = Layer.Layer.Error<ReturnType<typeof PgPool.layer>>

const notLeft = (backends: ReadonlyArray<Backend>, applicationName: string, within: Duration.DurationInput) =>
  backends.length === 0 ? Effect.void : Effect.fail(
    new PgTestError({
      reason: "BackendsLeft",
      detail:
        `${backends.length} backend(s) of "${applicationName}" still on the server ${
          Duration.format(Duration.decode(within))
        } after the pools closed: a connection outlived its scope (a pool or client built outside the test's ` +
        `scope, or never closed): ${JSON.stringify(backends)}`
    })
  )

/**
 * A fresh database for the test file, with `PgPool`, `SqlClient` and `PgClient` on it, for
 * `@effect/vitest`'s `layer(...)`. The database is a copy of the run's template (seeded once
 * by `PgTestSetup.make({ seed })`; without the kit's global setup, `TEST_DATABASE_URL` names
 * the server and `TEST_DATABASE_TEMPLATE` the database to copy, by default `template1`); when
 * the layer is released the pool closes, the kit
 * checks that no backend of the file's `application_name` is left — failing the file if one
 * is — and drops the database.
 *
 * **Example** (A test file)
 *
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { SqlClient } from "@effect/sql"
 * import { PgTest } from "@scoped-pool/testing"
 * import { Effect } from "effect"
 *
 * layer(PgTest.layer())("users", (it) => {
 *   it.effect("inserts a user", () =>
 *     PgTest.rollback(Effect.gen(function*() {
 *       const sql = yield* SqlClient.SqlClient
 *       yield* sql`INSERT INTO users ${sql.insert({ name: "Ada" })}`
 *       const rows = yield* sql<{ name: string }>`SELECT name FROM users`
 *       assert.deepStrictEqual(rows.map((r) => r.name), ["Ada"])
 *     })))
 * })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<PgPool.PgPool | SqlClient.SqlClient | PgClient.PgClient | Database, PgTestError | PoolLayerError> => {
  const { applicationName: givenName, leftoverWithin, ...poolOptions } = options
  return Layer.unwrapScoped(
    Effect.gen(function*() {
      const state = yield* vitestState
      const context = yield* setupContext(state)
      const applicationName = givenName ?? applicationNameOf(state.file ?? "scoped-pool-test")
      const within = leftoverWithin ?? "2 seconds"
      const connectTimeout = poolOptions.connectTimeout ?? "30 seconds"
      const name = internal.databaseNameOf(applicationName)
      const admin = Context.get(
        yield* Layer.build(
          PgPool.layer({
            url: Redacted.make(context.url),
            max: 1,
            applicationName: `${applicationName.slice(0, 56)}:admin`,
            connectTimeout
          })
        ),
        PgPool.PgPool
      ).sql
      yield* Effect.acquireRelease(
        internal.createDatabase(admin, name, context.template).pipe(
          Effect.mapError((cause) =>
            new PgTestError({
              reason: "Database",
              detail: `could not create the test database ${name}${
                context.template === null ? "" : ` from template ${context.template}`
              }: ${cause.message}`,
              cause
            })
          )
        ),
        () => Effect.orDie(internal.dropDatabase(admin, name))
      )
      const backends = (forName: string = applicationName) => internal.backendsOf(admin, forName)
      // Runs after the file's pool closed (finalizers run in reverse), before the drop.
      yield* Effect.addFinalizer(() =>
        internal.leftoverBackends(backends(), within).pipe(
          Effect.flatMap((left) => notLeft(left, applicationName, within)),
          Effect.orDie
        )
      )
      const url = Redacted.make(internal.withDatabase(context.url, name))
      return Layer.merge(
        PgPool.layer({ ...poolOptions, url, applicationName, connectTimeout }),
        Layer.succeed(Database, { name, url, applicationName, backends })
      )
    })
  ).pipe(liveClock)
}

/**
 * Runs `self` inside a transaction that is always rolled back, also when `self` succeeds: its
 * writes are never seen by the next test. Transactions inside `self` become savepoints.
 *
 * **Example** (Isolated tests on one database)
 *
 * ```ts
 * import { SqlClient } from "@effect/sql"
 * import { PgTest } from "@scoped-pool/testing"
 * import { Effect } from "effect"
 *
 * const test = PgTest.rollback(Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`DELETE FROM users`
 *   return yield* sql`SELECT count(*) FROM users`
 * }))
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const rollback = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql.withTransaction(Effect.flatMap(self, (value) => Effect.fail(new Rollback({ value })))).pipe(
        Effect.catchIf(
          (error): error is Rollback<A> => error instanceof Rollback,
          (signal) => Effect.succeed(signal.value)
        )
      )
  )

class Rollback<A> extends Data.TaggedError("@scoped-pool/testing/Rollback")<{ readonly value: A }> {}

/**
 * Fails with `PgTestError` (`BackendsLeft`) if a backend of the file's `application_name` (or
 * the one given) is still on the server after `within` (default 2 seconds). Call it after the
 * pools your test built have closed; the layer runs the same check at the end of the file.
 *
 * @since 0.2.0
 * @category assertions
 */
export const expectNoBackends = (
  options: { readonly applicationName?: string; readonly within?: Duration.DurationInput } = {}
): Effect.Effect<void, PgTestError | SqlError, Database> =>
  Effect.flatMap(Database, (database) => {
    const name = options.applicationName ?? database.applicationName
    const within = options.within ?? "2 seconds"
    return internal.leftoverBackends(database.backends(name), within).pipe(
      Effect.flatMap((left) => notLeft(left, name, within)),
      Effect.withClock(Clock.make())
    )
  })

/**
 * A throwaway server for a test that stops, restarts or crashes it, stopped (data dir removed)
 * when the scope closes. See `PgServer.make`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const server = (
  options: PgServer.StartOptions = {}
): Effect.Effect<PgServer.PgServer, PgServer.PgServerError, Scope.Scope> => PgServer.make(options)
