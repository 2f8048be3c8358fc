/**
 * Spans (issue 13 line 1): our statements and transactions trace as `@effect/sql-pg`'s do —
 * the same span names, kinds, attributes, parents, events and outcomes, span for span, for the
 * same program run under `PgClient.layer` and under `PgPool.layer`.
 */
import { SqlClient } from "@effect/sql"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

interface Recorded {
  readonly name: string
  readonly kind: Tracer.SpanKind
  readonly parent: string | undefined
  readonly attributes: Map<string, unknown>
  readonly events: Array<string>
  exit: string | undefined
}

// A tracer that records each span's name, kind, parent, attributes, events and how it ended.
const recordingTracer = (spans: Array<Recorded>) =>
  Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const recorded: Recorded = {
        name,
        kind,
        parent: Option.match(parent, { onNone: () => undefined, onSome: (p) => p._tag === "Span" ? p.name : p.spanId }),
        attributes: new Map(),
        events: [],
        exit: undefined
      }
      spans.push(recorded)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: String(spans.length),
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end(endTime, exit) {
          recorded.exit = Exit.isSuccess(exit) ? "success" : Exit.isInterrupted(exit) ? "interrupted" : "failure"
          ;(span as { status: Tracer.SpanStatus }).status = { _tag: "Ended", startTime, endTime, exit }
        },
        attribute(key, value) {
          recorded.attributes.set(key, value)
        },
        event(name) {
          recorded.events.push(name)
        },
        addLinks() {}
      }
      return span
    },
    context: (f) => f()
  })

/** Statements of every kind, a stream, and transactions that commit, roll back and nest. */
const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`SELECT ${1}::int AS n`
  yield* Effect.either(sql`SELECT 1/0`)
  yield* sql`SELECT 1 AS v`.values
  yield* sql`SELECT 1 AS r`.raw
  yield* sql`SELECT 1 AS u`.unprepared
  yield* sql`SELECT 1 AS w`.withoutTransform
  yield* Stream.runCollect(sql`SELECT generate_series(1, 3) AS s`.stream)
  yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT 'in transaction' AS t`
    yield* sql.withTransaction(sql`SELECT 'nested, kept' AS t`)
    yield* Effect.either(
      sql.withTransaction(Effect.zipRight(sql`SELECT 'nested, rolled back' AS t`, Effect.fail("no")))
    )
  }))
  yield* Effect.either(sql.withTransaction(Effect.zipRight(sql`SELECT 'rolled back' AS t`, Effect.fail("no"))))
}).pipe(Effect.withSpan("program"))

const traces = new Map<string, ReadonlyArray<Recorded>>()

const traceOf = (name: string, client: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  layer(client, { excludeTestServices: true })(name, (it) => {
    it.effect("records the program's spans", () =>
      Effect.gen(function*() {
        const spans: Array<Recorded> = []
        yield* program.pipe(Effect.withTracer(recordingTracer(spans)))
        traces.set(name, spans)
        assert.isAbove(spans.length, 10)
      }))
  })

describe("5. spans like @effect/sql-pg's", () => {
  traceOf("PgClient.layer", PgClient.layer({ url: Redacted.make(url), applicationName }))
  traceOf("PgPool.layer", PgPool.layer({ url: Redacted.make(url), applicationName, max: 2 }))

  it("the same spans, span for span: names, kinds, parents, attributes, events, outcomes", () => {
    const reference = traces.get("PgClient.layer")!
    const ours = traces.get("PgPool.layer")!
    const plain = (spans: ReadonlyArray<Recorded>) =>
      spans.map((span) => ({ ...span, attributes: Object.fromEntries(span.attributes) }))
    assert.deepStrictEqual(plain(ours), plain(reference))
    const statement = ours.find((span) => span.name === "sql.execute")!
    assert.strictEqual(statement.attributes.get("db.system.name"), "postgresql")
    assert.strictEqual(statement.attributes.get("db.namespace"), "postgres")
    assert.strictEqual(statement.attributes.get("server.address"), new URL(url).hostname)
    assert.strictEqual(statement.attributes.get("server.port"), Number(new URL(url).port))
    assert.deepStrictEqual(
      ours.filter((span) => span.name === "sql.transaction").map((span) => span.events),
      [["db.transaction.commit"], ["db.transaction.savepoint"], ["db.transaction.rollback"], [
        "db.transaction.rollback"
      ]]
    )
  })
})
