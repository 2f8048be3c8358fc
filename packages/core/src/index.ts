/**
 * A scoped resource pool for Effect: bounded waits, FIFO hand-off, ageing, health checks and a close with a
 * deadline that force-releases what is still leased.
 *
 * @since 0.1.0
 */

/**
 * The pool: `make`, `use`, `get` in a scope, `stats`, `resize`, `drain`, `close`.
 *
 * @since 0.1.0
 */
export * as Pool from "./Pool.js"

/**
 * The pool's errors (`PoolTimeout`, `PoolFull`, `PoolClosed`, …) and `isPoolError`.
 *
 * @since 0.1.0
 */
export * as PoolError from "./PoolError.js"

/**
 * The pool's options, their defaults and their validation.
 *
 * @since 0.1.0
 */
export * as PoolOptions from "./PoolOptions.js"

/**
 * The pool's counters and metrics.
 *
 * @since 0.1.0
 */
export * as PoolStats from "./PoolStats.js"

/**
 * Ties a service to the runtime that built it: a call from another runtime fails at once.
 *
 * @since 0.1.0
 */
export * as RuntimeGuard from "./RuntimeGuard.js"
