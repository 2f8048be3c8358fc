/**
 * An HTTP server with the pool in its application layer (the lifespan pattern).
 *
 * On SIGTERM or SIGINT (`NodeRuntime.runMain`): the server stops accepting, in-flight
 * requests get up to `SHUTDOWN_DEADLINE` to finish (then their connections are closed), and
 * only then does the pool close: statements still running are cancelled on the server, and
 * every connection is terminated. A second signal exits at once.
 *
 *   DATABASE_URL=postgres://… PORT=3000 pnpm tsx examples/http-server.ts
 *   curl localhost:3000/now      curl localhost:3000/slow?seconds=2
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgPoolLive } from "@scoped-pool/pg"
import { Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"

const port = Number(process.env.PORT ?? 3000)
const shutdownDeadlineMillis = Number(process.env.SHUTDOWN_DEADLINE ?? 5_000)

const router = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/now",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ now: Date }>`SELECT now() AS now`
      return yield* HttpServerResponse.json({ now: row!.now })
    })
  ),
  HttpRouter.get(
    "/slow",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const { seconds } = yield* HttpRouter.schemaParams(Schema.Struct({ seconds: Schema.NumberFromString }))
      yield* sql`SELECT pg_sleep(${seconds})`
      return yield* HttpServerResponse.json({ slept: seconds })
    })
  )
)

const server = createServer()

// Released before the HTTP server (it is built after it): from the first signal on, in-flight
// requests have the deadline to finish; then their connections are closed so the close ends.
const ShutdownDeadline = Layer.scopedDiscard(Effect.gen(function*() {
  yield* HttpServer.HttpServer
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      setTimeout(() => server.closeAllConnections(), shutdownDeadlineMillis).unref()
    })
  )
}))

const HttpLive = router.pipe(
  HttpServer.serve(),
  HttpServer.withLogAddress,
  Layer.provide(ShutdownDeadline),
  Layer.provide(NodeHttpServer.layer(() => server, { port })),
  // The pool is built first and released last: after the server stopped serving.
  Layer.provide(PgPoolLive)
)

NodeRuntime.runMain(Layer.launch(HttpLive))
