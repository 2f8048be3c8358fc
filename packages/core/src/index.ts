/**
 * @since 0.1.0
 */
export * as Pool from "./Pool.js"

/**
 * @since 0.1.0
 */
export * as PoolError from "./PoolError.js"

/**
 * @since 0.1.0
 */
export * as PoolOptions from "./PoolOptions.js"

/**
 * @since 0.1.0
 */
export * as PoolStats from "./PoolStats.js"

/**
 * @since 0.1.0
 */
export * as RuntimeGuard from "./RuntimeGuard.js"
