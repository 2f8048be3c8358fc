/**
 * A test kit for Effect programs on PostgreSQL, with vitest and without Docker: one embedded server per run, a
 * fresh database per test file copied from a template seeded once, rollback per test, and a check that no
 * connection outlives its test file.
 *
 * @since 0.2.0
 */

/**
 * Throwaway embedded PostgreSQL servers (as root or a normal user, from any directory).
 *
 * @since 0.2.0
 */
export * as PgServer from "./PgServer.js"

/**
 * `PgTest.layer` (a fresh database per file), `rollback`, `expectNoBackends`, `server`.
 *
 * @since 0.2.0
 */
export * as PgTest from "./PgTest.js"

/**
 * The vitest global setup: one server per run and a template seeded once.
 *
 * @since 0.2.0
 */
export * as PgTestSetup from "./PgTestSetup.js"
