/**
 * A fake resource for pool tests: counts creations and releases, and can be told to fail
 * creation, checks or resets, or to report itself dead.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export class CreateError extends Data.TaggedError("CreateError")<{ readonly attempt: number }> {}

export interface Resource {
  readonly id: number
  dead: boolean
}

export interface TestResource {
  readonly acquire: Effect.Effect<Resource, CreateError, Scope.Scope>
  /** Ids of resources created and not released yet. */
  readonly alive: Set<number>
  /** Every resource created, by id (released ones included), e.g. to mark one dead. */
  readonly byId: Map<number, Resource>
  /** How often each id was released. */
  readonly releases: Map<number, number>
  readonly counts: { created: number; attempts: number; released: number }
  /** Creation attempts fail while this is true. */
  failing: boolean
}

export const makeTestResource = (): TestResource => {
  const self: TestResource = {
    alive: new Set(),
    byId: new Map(),
    releases: new Map(),
    counts: { created: 0, attempts: 0, released: 0 },
    failing: false,
    acquire: Effect.acquireRelease(
      Effect.suspend(() => {
        const attempt = ++self.counts.attempts
        if (self.failing) return Effect.fail(new CreateError({ attempt }))
        const resource: Resource = { id: ++self.counts.created, dead: false }
        self.alive.add(resource.id)
        self.byId.set(resource.id, resource)
        return Effect.succeed(resource)
      }),
      (resource) =>
        Effect.sync(() => {
          self.alive.delete(resource.id)
          self.counts.released++
          self.releases.set(resource.id, (self.releases.get(resource.id) ?? 0) + 1)
        })
    )
  }
  return self
}
