/**
 * What a pool reports about itself: a `Stats` snapshot (psycopg's keys as the reference) and
 * Effect `Metric`s named after OpenTelemetry's semantic conventions for database client
 * connection pools (`db.client.connection.*`), so that an OpenTelemetry exporter
 * (`@effect/opentelemetry`) shows them where dashboards expect them.
 *
 * Every metric carries the attribute `db.client.connection.pool.name` (the pool's `name`);
 * `db.client.connection.count` also carries `db.client.connection.state`, `idle` or `used`.
 * Durations are in seconds, as the conventions say (`Stats` keeps milliseconds). Read one
 * pool's series with {@link metricsOf}.
 *
 * | metric (OpenTelemetry) | instrument | unit | replaces (0.1) |
 * |---|---|---|---|
 * | `db.client.connection.count` {state=idle} | gauge | {connection} | `scoped_pool_idle` |
 * | `db.client.connection.count` {state=used} | gauge | {connection} | `scoped_pool_in_use` |
 * | (sum of the two above) | | | `scoped_pool_size` |
 * | `db.client.connection.pending_requests` | gauge | {request} | `scoped_pool_waiting` |
 * | `db.client.connection.max` | gauge | {connection} | (new) `max` |
 * | `db.client.connection.idle.max` | gauge | {connection} | (new) `max`: every resource may be idle |
 * | `db.client.connection.idle.min` | gauge | {connection} | (new) `min` |
 * | `db.client.connection.timeouts` | counter | {timeout} | (new) requests that ended in `PoolTimeout` |
 * | `db.client.connection.create_time` | histogram | s | (new) time to create a resource |
 * | `db.client.connection.wait_time` | histogram | s | `scoped_pool_acquire_wait_ms` (was ms) |
 * | `db.client.connection.use_time` | histogram | s | `scoped_pool_lease_duration_ms` (was ms) |
 *
 * The conventions name the state attribute `db.client.connection.state` (older versions:
 * `state`) and use UpDownCounters for the counts; Effect has no UpDownCounter, so they are
 * gauges. `wait_time` records the requests that had to wait (as `requestsQueued` counts
 * them); one served at once by an idle resource waited 0 s and is not recorded.
 *
 * What the hot path — an idle resource leased and returned — costs: two field updates and one
 * store of the lease's duration in a buffer, nothing more. An Effect histogram update costs
 * tens of nanoseconds and boxes numbers; a tagged metric also builds a label array and looks
 * its hook up by key on every update. So the pool resolves its hooks once, and publishes the
 * buffered durations and the gauges every second, on `Pool.stats` and at close: a metric read
 * in between may be up to a second old.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
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
  /** Leases that shared a resource already leased (`Pool.useShared`, with `share` on). */
  readonly sharedLeases: number
  /** Resources retired, by reason. */
  readonly retired: Readonly<Record<RetireReason, number>>
  /** Total time resources spent leased. */
  readonly usageTimeTotal: number
  /** Whether the pool is closed. */
  readonly closed: boolean
}

/**
 * The attributes of the pool's metrics.
 *
 * @since 0.1.0
 * @category metrics
 */
export const attributes = {
  poolName: "db.client.connection.pool.name",
  state: "db.client.connection.state"
} as const

const secondsBoundaries = MetricBoundaries.exponential({ start: 0.00005, factor: 2, count: 21 })

/**
 * The metrics' keys, without the pool's attributes.
 *
 * @since 0.1.0
 * @category metrics
 */
export const keys = {
  count: MetricKey.gauge("db.client.connection.count", {
    description: "The number of connections that are currently in state described by the state attribute"
  }),
  max: MetricKey.gauge("db.client.connection.max", { description: "The maximum number of open connections allowed" }),
  idleMax: MetricKey.gauge("db.client.connection.idle.max", {
    description: "The maximum number of idle open connections allowed"
  }),
  idleMin: MetricKey.gauge("db.client.connection.idle.min", {
    description: "The minimum number of idle open connections allowed"
  }),
  pendingRequests: MetricKey.gauge("db.client.connection.pending_requests", {
    description: "The number of current pending requests for an open connection"
  }),
  timeouts: MetricKey.counter("db.client.connection.timeouts", {
    description: "The number of connection timeouts that have occurred trying to obtain a connection from the pool",
    incremental: true
  }),
  createTime: MetricKey.histogram(
    "db.client.connection.create_time",
    secondsBoundaries,
    "The time it took to create a new connection, in seconds"
  ),
  waitTime: MetricKey.histogram(
    "db.client.connection.wait_time",
    secondsBoundaries,
    "The time it took to obtain an open connection from the pool, in seconds (requests that had to wait)"
  ),
  useTime: MetricKey.histogram(
    "db.client.connection.use_time",
    secondsBoundaries,
    "The time between borrowing a connection and returning it to the pool, in seconds"
  )
} as const

/**
 * `db.client.connection.count`: resources by state (`db.client.connection.state` = `idle` or `used`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionCount: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.count)

/**
 * `db.client.connection.max`: the pool's `max`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionMax: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.max)

/**
 * `db.client.connection.idle.max`: the most resources that may be idle (the pool's `max`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionIdleMax: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.idleMax)

/**
 * `db.client.connection.idle.min`: the resources kept open even when idle (the pool's `min`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionIdleMin: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.idleMin)

/**
 * `db.client.connection.pending_requests`: callers waiting for a lease.
 *
 * @since 0.1.0
 * @category metrics
 */
export const pendingRequests: Metric.Metric.Gauge<number> = Metric.fromMetricKey(keys.pendingRequests)

/**
 * `db.client.connection.timeouts`: requests that ended in `PoolTimeout`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const timeouts: Metric.Metric.Counter<number> = Metric.fromMetricKey(keys.timeouts)

/**
 * `db.client.connection.create_time`: how long creating a resource took, in seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const createTime: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.createTime)

/**
 * `db.client.connection.wait_time`: how long callers that had to wait waited for a lease, in seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const waitTime: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.waitTime)

/**
 * `db.client.connection.use_time`: how long leases were held, in seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const useTime: Metric.Metric.Histogram<number> = Metric.fromMetricKey(keys.useTime)

/**
 * One pool's series of every metric, tagged as the pool tags them: read them with `Metric.value`.
 *
 * **Example** (The leased resources of the pool "app")
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { PoolStats } from "@scoped-pool/core"
 *
 * const used = Effect.map(Metric.value(PoolStats.metricsOf("app").used), (state) => state.value)
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const metricsOf = (poolName: string) => {
  const pool = <T extends MetricKeyType.MetricKeyType<any, any>, In, Out>(metric: Metric.Metric<T, In, Out>) =>
    Metric.tagged(metric, attributes.poolName, poolName)
  return {
    idle: Metric.tagged(pool(connectionCount), attributes.state, "idle"),
    used: Metric.tagged(pool(connectionCount), attributes.state, "used"),
    max: pool(connectionMax),
    idleMax: pool(connectionIdleMax),
    idleMin: pool(connectionIdleMin),
    pendingRequests: pool(pendingRequests),
    timeouts: pool(timeouts),
    createTime: pool(createTime),
    waitTime: pool(waitTime),
    useTime: pool(useTime)
  }
}
