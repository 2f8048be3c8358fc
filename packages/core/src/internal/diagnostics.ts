/**
 * Misuse diagnostics across pools of one process: pool churn (the same configuration opened
 * and closed again and again — typically `Effect.provide(PoolLayer)` per request) and
 * duplicates (two live pools with the same configuration). Each is reported once per identity.
 *
 * @internal
 */

/** More closes than this within `churnWindowMillis` is churn. @internal */
export const churnLimit = 3
/** @internal */
export const churnWindowMillis = 60_000

interface Record {
  live: number
  closes: Array<number>
  warnedChurn: boolean
  warnedDuplicate: boolean
}

const records = new Map<string, Record>()

const recordOf = (identity: string): Record => {
  let record = records.get(identity)
  if (record === undefined) {
    record = { live: 0, closes: [], warnedChurn: false, warnedDuplicate: false }
    records.set(identity, record)
  }
  return record
}

/** Notes an open; returns a warning to log, if any. @internal */
export const opened = (identity: string, name: string): string | undefined => {
  const record = recordOf(identity)
  record.live++
  if (record.live < 2 || record.warnedDuplicate) return undefined
  record.warnedDuplicate = true
  return `pool "${name}": ${record.live} pools with identical configuration are open in this process; ` +
    "each holds its own connections. Build the pool's Layer once and share it (provide it at the application's " +
    "edge, or use one ManagedRuntime) instead of providing it in several places"
}

/** Notes a close at `now`; returns a warning to log, if any. @internal */
export const closed = (identity: string, name: string, now: number): string | undefined => {
  const record = recordOf(identity)
  record.live--
  record.closes = record.closes.filter((t) => now - t < churnWindowMillis)
  record.closes.push(now)
  if (record.closes.length <= churnLimit || record.warnedChurn) return undefined
  record.warnedChurn = true
  return `pool "${name}" was opened and closed ${record.closes.length} times within a minute: every ` +
    "Effect.provide(layer) builds a new pool unless the layer is shared. Provide the pool's Layer once at the " +
    "application's edge (Layer memoization shares it), or build a ManagedRuntime once and run effects with it"
}
