/**
 * Pure timing rules of the pool: when a resource expires, when it counts as idle for
 * long enough to be retired or re-checked. No Effect services, so they are tested directly.
 *
 * @internal
 */

/**
 * When a resource created at `createdAt` expires: `maxLifetime` minus a random part of up to
 * `jitter` of it, so that a pool filled at once does not expire all at once (HikariCP does the
 * same with up to 2.5 %). `random` is in [0, 1).
 *
 * @internal
 */
export const expiresAt = (createdAt: number, maxLifetime: number, jitter: number, random: number): number =>
  createdAt + maxLifetime - Math.floor(maxLifetime * jitter * random)

/** @internal */
export const isExpired = (expires: number, now: number): boolean => now >= expires

/** @internal */
export const needsCheck = (lastUsedAt: number, now: number, checkAfterIdle: number): boolean =>
  now - lastUsedAt > checkAfterIdle

/**
 * How often the maintenance fiber wakes: often enough to honour the shortest time-based bound
 * within a quarter of it, but never more than every 50 ms nor less than every 30 s.
 *
 * @internal
 */
export const maintenanceInterval = (
  idleTimeout: number,
  maxLifetime: number,
  leakThreshold: number | undefined
): number => {
  const shortest = Math.min(idleTimeout, maxLifetime, leakThreshold ?? Number.POSITIVE_INFINITY)
  return Math.min(30_000, Math.max(50, Math.floor(shortest / 4)))
}
