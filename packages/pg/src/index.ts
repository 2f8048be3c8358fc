/**
 * @since 0.1.0
 */
export * as PgConnection from "./PgConnection.js"

/**
 * @since 0.1.0
 */
export * as PgError from "./PgError.js"

/**
 * @since 0.1.0
 */
export * as PgPool from "./PgPool.js"

/**
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
