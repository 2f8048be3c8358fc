/**
 * What a pool reports about itself: a `Stats` snapshot (psycopg's keys as the reference) and
 * Effect `Metric`s tagged with the pool's name.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type { RetireReason } from "./PoolOptions.js"

/**
 * A snapshot of a pool's state and counters since it opened. Times are in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly name: string
  /** Resources open now, leased or idle. */
  readonly size: number
  readonly min: number
  readonly max: number
  readonly idle: number
  readonly inUse: number
  /** Callers waiting for a lease now. */
  readonly waiting: number
  /** Resources being created now. */
  readonly pending: number
  /** Leases asked for. */
  readonly requests: number
  /** Leases that had to wait. */
  readonly requestsQueued: number
  readonly waitTimeTotal: number
  readonly waitTimeMax: number
  /** Requests that ended in `PoolTimeout`. */
  readonly timeouts: number
  /** Requests refused with `PoolFull`. */
  readonly rejected: number
  readonly created: number
  readonly creationErrors: number
  /** Resources retired, by reason. */
  readonly retired: Readonly<Record<RetireReason, number>>
  /** Total time resources spent leased. */
  readonly usageTimeTotal: number
  /** Whether the pool is closed. */
  readonly closed: boolean
}

/**
 * Resources open, leased or idle.
 *
 * @since 0.1.0
 * @category metrics
 */
export const size = Metric.gauge("scoped_pool_size", { description: "resources open, leased or idle" })

/**
 * Idle resources.
 *
 * @since 0.1.0
 * @category metrics
 */
export const idle = Metric.gauge("scoped_pool_idle", { description: "idle resources" })

/**
 * Leased resources.
 *
 * @since 0.1.0
 * @category metrics
 */
export const inUse = Metric.gauge("scoped_pool_in_use", { description: "leased resources" })

/**
 * Callers waiting for a lease.
 *
 * @since 0.1.0
 * @category metrics
 */
export const waiting = Metric.gauge("scoped_pool_waiting", { description: "callers waiting for a lease" })

const millisBoundaries = MetricBoundaries.exponential({ start: 0.05, factor: 2, count: 18 })

/**
 * How long callers that had to wait waited for a lease, in milliseconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const acquireWait = Metric.histogram(
  "scoped_pool_acquire_wait_ms",
  millisBoundaries,
  "wait for a lease of callers that had to wait, in milliseconds"
)

/**
 * How long leases were held, in milliseconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const leaseDuration = Metric.histogram(
  "scoped_pool_lease_duration_ms",
  millisBoundaries,
  "how long leases were held, in milliseconds"
)
