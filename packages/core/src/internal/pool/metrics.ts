/**
 * The pool's metric hooks, resolved once per pool. A tagged Effect metric looks its hook up in
 * the registry on every update (a new label array, a MetricKey, a hash lookup); these hooks are
 * looked up when the pool opens, so an update on the hot path is a plain function call.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
import * as MetricLabel from "effect/MetricLabel"
import * as PoolStats from "../../PoolStats.js"

/** @internal */
export interface Metrics {
  readonly idle: MetricHook.MetricHook.Gauge<number>
  readonly used: MetricHook.MetricHook.Gauge<number>
  readonly max: MetricHook.MetricHook.Gauge<number>
  readonly idleMax: MetricHook.MetricHook.Gauge<number>
  readonly idleMin: MetricHook.MetricHook.Gauge<number>
  readonly pendingRequests: MetricHook.MetricHook.Gauge<number>
  readonly timeouts: MetricHook.MetricHook.Counter<number>
  readonly createTime: MetricHook.MetricHook.Histogram
  readonly waitTime: MetricHook.MetricHook.Histogram
  readonly useTime: MetricHook.MetricHook.Histogram
}

/** The hooks of the pool named `poolName`, tagged as `PoolStats.metricsOf` reads them. @internal */
export const metricsOf = (poolName: string): Metrics => {
  const pool = MetricLabel.make(PoolStats.attributes.poolName, poolName)
  const hook = <T extends MetricKeyType.MetricKeyType<any, any>>(
    key: MetricKey.MetricKey<T>,
    ...labels: Array<MetricLabel.MetricLabel>
  ) => Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(key, [pool, ...labels]))
  const { keys } = PoolStats
  return {
    idle: hook(keys.count, MetricLabel.make(PoolStats.attributes.state, "idle")),
    used: hook(keys.count, MetricLabel.make(PoolStats.attributes.state, "used")),
    max: hook(keys.max),
    idleMax: hook(keys.idleMax),
    idleMin: hook(keys.idleMin),
    pendingRequests: hook(keys.pendingRequests),
    timeouts: hook(keys.timeouts),
    createTime: hook(keys.createTime),
    waitTime: hook(keys.waitTime),
    useTime: hook(keys.useTime)
  }
}
