/**
 * The pool's spans and metrics, exported through OpenTelemetry (`@effect/opentelemetry`).
 *
 * Every statement is a span (`sql.execute`, with `db.system.name`, `db.namespace`,
 * `server.address`, `server.port`), a child of the span it runs in; the pool's gauges and
 * histograms (connections, waits, lease times) are Effect metrics, which the SDK's metric
 * reader exports. Here both go to the console; for a collector, swap the exporters for
 * `OTLPTraceExporter` / `OTLPMetricExporter` (`@opentelemetry/exporter-*-otlp-http`).
 *
 *   DATABASE_URL=postgres://… pnpm tsx examples/opentelemetry.ts
 */
import { NodeSdk } from "@effect/opentelemetry"
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { ConsoleMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { PgPoolLive } from "@scoped-pool/pg"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // Statements of several fibers at once: the pool opens connections, callers may wait.
  yield* Effect.forEach(
    [1, 2, 3, 4, 5, 6],
    (n) => sql<{ n: number }>`SELECT ${n}::int AS n, pg_sleep(0.05)`,
    { concurrency: "unbounded" }
  ).pipe(Effect.withSpan("report.build"))
  yield* sql.withTransaction(sql`SELECT now()`).pipe(Effect.withSpan("report.save"))
  yield* Console.log("done: spans and metrics are exported as the SDK shuts down")
})

// Spans are exported as they end; metrics every second and once more at shutdown, after the
// pool (built after the SDK) has closed.
const Telemetry = NodeSdk.layer(() => ({
  resource: { serviceName: "scoped-pool-example" },
  spanProcessor: new SimpleSpanProcessor(new ConsoleSpanExporter()),
  metricReader: new PeriodicExportingMetricReader({
    exporter: new ConsoleMetricExporter(),
    exportIntervalMillis: 1_000
  })
}))

program.pipe(
  Effect.provide(PgPoolLive.pipe(Layer.provideMerge(Telemetry))),
  NodeRuntime.runMain
)
