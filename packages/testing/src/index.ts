/**
 * @since 0.2.0
 */
export * as PgServer from "./PgServer.js"

/**
 * @since 0.2.0
 */
export * as PgTest from "./PgTest.js"

/**
 * @since 0.2.0
 */
export * as PgTestSetup from "./PgTestSetup.js"
