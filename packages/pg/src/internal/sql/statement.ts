/**
 * Our `@effect/sql` statements: the same `Statement` contract (a `Fragment`, an Effect, `raw`,
 * `values`, `unprepared`, `stream`, `withoutTransform`, `compile`, `toJSON`), run by
 * `Executor` instead of `@effect/sql`'s per-statement Scope and `useSpan`.
 *
 * A statement's segments are built by `@effect/sql`'s own constructor (`Statement.make`), so
 * `sql\`…\``, `sql.unsafe` and every helper (`in`, `insert`, `update`, `and`, `csv`,
 * `onDialect`…) mean exactly what they mean there, and the compiler is `@effect/sql-pg`'s.
 *
 * @internal
 */
import type { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import { identity } from "effect/Function"
import type * as Stream from "effect/Stream"
import * as Executor from "./executor.js"
import * as Operation from "./operation.js"

/** @internal */
export class PgStatement<A> extends Effectable.Class<ReadonlyArray<A>, SqlError> implements Statement.Statement<A> {
  constructor(
    readonly segments: ReadonlyArray<Statement.Segment>,
    private readonly core: Operation.Core
  ) {
    super()
  }

  get [Statement.FragmentId]() {
    return identity
  }

  commit(): Effect.Effect<ReadonlyArray<A>, SqlError> {
    return Executor.run(this, Operation.execute, this.core) as Effect.Effect<ReadonlyArray<A>, SqlError>
  }

  get withoutTransform(): Effect.Effect<ReadonlyArray<A>, SqlError> {
    return Executor.run(this, Operation.withoutTransform, this.core) as Effect.Effect<ReadonlyArray<A>, SqlError>
  }

  get raw(): Effect.Effect<unknown, SqlError> {
    return Executor.run(this, Operation.raw, this.core)
  }

  get values(): Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError> {
    return Executor.run(this, Operation.values, this.core) as Effect.Effect<
      ReadonlyArray<ReadonlyArray<unknown>>,
      SqlError
    >
  }

  get unprepared(): Effect.Effect<ReadonlyArray<A>, SqlError> {
    return Executor.run(this, Operation.unprepared, this.core) as Effect.Effect<ReadonlyArray<A>, SqlError>
  }

  get stream(): Stream.Stream<A, SqlError> {
    return Executor.stream(this, this.core)
  }

  compile(withoutTransform?: boolean | undefined): readonly [sql: string, params: ReadonlyArray<unknown>] {
    return this.core.compiler.compile(this, withoutTransform ?? false)
  }

  toJSON() {
    const [sql, params] = this.compile()
    return { _id: "@effect/sql/Statement", segments: this.segments, sql, params }
  }
}

/**
 * The statement constructor of a client (`sql`): a template tag, `sql("identifier")`, and
 * every `@effect/sql` helper.
 *
 * @internal
 */
export const makeConstructor = (core: Operation.Core): Statement.Constructor => {
  // Only its helpers and segment building are used: our statements never run through it.
  const never = Effect.dieMessage("internal: @effect/sql's acquirer of a scoped-pool client was used")
  const base = Statement.make(never, core.compiler, core.spanAttributes, core.transformRows)
  function sql(strings: unknown): unknown {
    if (Array.isArray(strings) && "raw" in strings) {
      return new PgStatement(
        (base as (...args: Array<unknown>) => Statement.Fragment).apply(
          undefined,
          arguments as unknown as Array<unknown>
        ).segments,
        core
      )
    }
    return base(strings as string)
  }
  return Object.assign(sql, {
    unsafe: <A extends object>(text: string, params?: ReadonlyArray<unknown>) =>
      new PgStatement<A>(base.unsafe(text, params).segments, core),
    literal: base.literal,
    in: base.in,
    insert: base.insert,
    update: base.update,
    updateValues: base.updateValues,
    and: base.and,
    or: base.or,
    csv: base.csv,
    join: base.join,
    onDialect: base.onDialect,
    onDialectOrElse: base.onDialectOrElse
  }) as unknown as Statement.Constructor
}
