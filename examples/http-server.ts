/**
 * An HTTP server with the pool in its application layer (the lifespan pattern).
 *
 * On SIGTERM or SIGINT (`NodeRuntime.runMain`): the server stops accepting, in-flight
 * requests get up to `SHUTDOWN_DEADLINE` to finish (then their connections are closed), and
 * only then does the pool close: statements still running are cancelled on the server, and
 * every connection is terminated. Each phase is logged. A second signal exits at once.
 *
 *   DATABASE_URL=postgres://… PORT=3000 pnpm tsx examples/http-server.ts
 *   curl localhost:3000/now      curl localhost:3000/slow?seconds=2      curl localhost:3000/slow?seconds=abc
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgPoolLive } from "@scoped-pool/pg"
import { Effect, Layer, ParseResult, Schema } from "effect"
import { createServer } from "node:http"

const port = Number(process.env.PORT ?? 3000)
const shutdownDeadlineMillis = Number(process.env.SHUTDOWN_DEADLINE ?? 5_000)

/** Bad input gets a 400 with a JSON body that says what was wrong, instead of an empty 400. */
const badRequest = (error: ParseResult.ParseError) =>
  HttpServerResponse.json(
    { error: "bad request", detail: ParseResult.TreeFormatter.formatErrorSync(error) },
    { status: 400 }
  )

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
      const { seconds } = yield* HttpRouter.schemaParams(
        Schema.Struct({ seconds: Schema.NumberFromString.pipe(Schema.between(0, 60)) })
      )
      yield* sql`SELECT pg_sleep(${seconds})`
      return yield* HttpServerResponse.json({ slept: seconds })
    }).pipe(Effect.catchTag("ParseError", badRequest))
  )
)

const server = createServer()

/** A layer that only logs `message` when it is released: marks a phase of the shutdown. */
const logOnRelease = (message: string) => Layer.scopedDiscard(Effect.addFinalizer(() => Effect.logInfo(message)))

// Released before the HTTP server (it is built after it): from the first signal on, in-flight
// requests have the deadline to finish; then their connections are closed so the close ends.
const ShutdownDeadline = Layer.scopedDiscard(Effect.gen(function*() {
  yield* HttpServer.HttpServer
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* Effect.logInfo(
        `shutdown 1/3: no new connections; in-flight requests have ${shutdownDeadlineMillis} ms to finish`
      )
      setTimeout(() => server.closeAllConnections(), shutdownDeadlineMillis).unref()
    })
  )
}))

// Layers are built bottom-up and released top-down: serve, the deadline, the HTTP server
// (waits for in-flight requests), then the pool (cancels what still runs), last.
const HttpLive = router.pipe(
  HttpServer.serve(),
  HttpServer.withLogAddress,
  Layer.provide(ShutdownDeadline),
  Layer.provide(NodeHttpServer.layer(() => server, { port })),
  Layer.provide(logOnRelease("shutdown 2/3: HTTP server closed; closing the pool")),
  Layer.provide(PgPoolLive),
  Layer.provide(logOnRelease("shutdown 3/3: pool closed; bye"))
)

NodeRuntime.runMain(Layer.launch(HttpLive))
