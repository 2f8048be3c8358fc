/**
 * PostgreSQL for Effect: a scoped pool whose interrupted statements are cancelled on the server, provided as
 * `PgPool`, `SqlClient` and `PgClient`.
 *
 * @since 0.1.0
 */

/**
 * One scoped PostgreSQL connection: execute, stream, cancel on the server, close.
 *
 * @since 0.1.0
 */
export * as PgConnection from "./PgConnection.js"

/**
 * Bulk load and export with COPY as Effect streams, and the encoders and decoders of its text, CSV and Schema rows.
 *
 * @since 0.3.0
 */
export * as PgCopy from "./PgCopy.js"

/**
 * The errors of connections and statements: `PgConnectError`, `PgQueryError`, `PgQueryTimeout`, …
 *
 * @since 0.1.0
 */
export * as PgError from "./PgError.js"

/**
 * The pool and its layers (`make`, `layer`, `layerConfig`, `PgPoolLive`), providing `PgPool`, `SqlClient` and
 * `PgClient`.
 *
 * @since 0.1.0
 */
export * as PgPool from "./PgPool.js"

/**
 * The pool's options, read from code or from the environment (`DATABASE_URL`, `PG*`, `PGPOOL_*`).
 *
 * @since 0.1.0
 */
export * as PgPoolConfig from "./PgPoolConfig.js"

export {
  /**
   * The pool configured from the environment; see `PgPool.PgPoolLive`.
   *
   * @since 0.1.0
   * @category layers
   */
  PgPoolLive
} from "./PgPool.js"

export {
  /**
   * Tells a pool error (`PoolTimeout`, `PoolClosed`, …) apart, e.g. as the `cause` of an `SqlError`.
   *
   * @since 0.1.0
   * @category refinements
   */
  isPoolError
} from "@scoped-pool/core/PoolError"
