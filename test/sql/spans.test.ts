import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { PgPool } from "@scoped-pool/pg"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Tracer from "effect/Tracer"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

interface Recorded {
  readonly name: string
  readonly attributes: Map<string, unknown>
}

// A tracer that only records each span's name and attributes.
const recordingTracer = (spans: Array<Recorded>) =>
  Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const attributes = new Map<string, unknown>()
      spans.push({ name, attributes })
      return {
        _tag: "Span",
        name,
        spanId: String(spans.length),
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links,
        sampled: true,
        kind,
        end() {},
        attribute(key, value) {
          attributes.set(key, value)
        },
        event() {},
        addLinks() {}
      } satisfies Tracer.Span
    },
    context: (f) => f()
  })

describe("5. span attributes like @effect/sql-pg's", () => {
  layer(PgPool.layer({ url: Redacted.make(url), applicationName, max: 1 }), { excludeTestServices: true })((it) => {
    it.effect("a statement's span carries db.system.name, db.namespace, server.address and server.port", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const spans: Array<Recorded> = []
        yield* sql`SELECT 1`.pipe(Effect.withTracer(recordingTracer(spans)))
        const span = Option.fromNullable(spans.find((s) => s.name === "sql.execute"))
        assert.isTrue(Option.isSome(span), spans.map((s) => s.name).join())
        const attributes = Option.getOrThrow(span).attributes
        assert.strictEqual(attributes.get("db.system.name"), "postgresql")
        assert.strictEqual(attributes.get("db.namespace"), "postgres")
        assert.strictEqual(attributes.get("server.address"), new URL(url).hostname)
        assert.strictEqual(attributes.get("server.port"), Number(new URL(url).port))
      }))
  })
})
