/**
 * Spans of statements and transactions, made straight from the fiber's tracer.
 *
 * `Effect.useSpan` reads a dozen FiberRefs and wraps the effect in `onExit` for every span; a
 * statement already runs in a region that sees its exit, so it only needs the span itself. What
 * is made here is what `useSpan` makes for `@effect/sql`'s `{ kind: "client",
 * captureStackTrace: false }`: the same parent (the current span, skipping those that disable
 * propagation), links and annotations from the environment, start and end times from the
 * fiber's clock (unless timing is off). No span at all when tracing is off, nor under Effect's
 * default tracer, which records nothing (see `recorded`).
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

/** @internal */
export type Attributes = ReadonlyArray<readonly [string, unknown]>

const options: Tracer.SpanOptions = { kind: "client", captureStackTrace: false }
const noLinks: ReadonlyArray<Tracer.SpanLink> = []
const zero = BigInt(0)

const parentOf = (span: Tracer.AnySpan | undefined): Option.Option<Tracer.AnySpan> => {
  while (span !== undefined && Context.get(span.context, Tracer.DisablePropagation)) {
    span = span._tag === "Span" ? Option.getOrUndefined(span.parent) : undefined
  }
  return span === undefined ? Option.none() : Option.some(span)
}

/** A started span: end it with {@link end}. */
export interface Started {
  readonly span: Tracer.Span
  readonly clock: Clock.Clock | undefined
}

const ATTR_DB_OPERATION_NAME = "db.operation.name"
const ATTR_DB_QUERY_TEXT = "db.query.text"

/** Starts a client span named `name` in `fiber` with `attributes`. */
const start = (fiber: Fiber.RuntimeFiber<any, any>, name: string, attributes: Attributes): Started => {
  const parent = parentOf(fiber.currentSpan)
  const clock = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
    ? Context.get(fiber.currentDefaultServices, Clock.Clock)
    : undefined
  const links = fiber.getFiberRef(FiberRef.currentTracerSpanLinks)
  const span = fiber.currentTracer.span(
    name,
    parent,
    Context.empty(),
    Chunk.isEmpty(links) ? noLinks : Chunk.toReadonlyArray(links),
    clock === undefined ? zero : clock.unsafeCurrentTimeNanos(),
    "client",
    options
  )
  const annotations = fiber.getFiberRef(FiberRef.currentTracerSpanAnnotations)
  if (HashMap.size(annotations) > 0) HashMap.forEach(annotations, (value, key) => span.attribute(key, value))
  for (let i = 0; i < attributes.length; i++) span.attribute(attributes[i]![0], attributes[i]![1])
  return { span, clock }
}

// Effect's default tracer: it records nothing and exports nothing.
const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * Whether spans made now would reach anything: tracing is on and the tracer is not Effect's
 * default one. Under the default tracer a span is pure cost (span and trace ids drawn from
 * `Math.random`, a Map, BigInt times, an Exit; about 3 µs a transaction on the CI machine) that
 * nothing records: a statement's span is never a parent (no user code runs inside it) and is
 * handed to nobody; a transaction's span would only be seen by code inside it that asks for
 * `Effect.currentSpan`, which then sees the enclosing span instead.
 *
 * @internal
 */
export const recorded = (fiber: Fiber.RuntimeFiber<any, any>): boolean =>
  fiber.currentTracer !== nativeTracer && fiber.getFiberRef(FiberRef.currentTracerEnabled)

/**
 * Starts the `sql.execute` span of a statement, with `@effect/sql`'s attributes in its order:
 * the client's, then the operation and the statement text; `undefined` unless `recorded`.
 *
 * @internal
 */
export const statement = (
  fiber: Fiber.RuntimeFiber<any, any>,
  attributes: Attributes,
  operation: string,
  sql: string
): Started | undefined => {
  if (!recorded(fiber)) return undefined
  const started = start(fiber, "sql.execute", attributes)
  started.span.attribute(ATTR_DB_OPERATION_NAME, operation)
  started.span.attribute(ATTR_DB_QUERY_TEXT, sql)
  return started
}

/** The time for an event or the end of `started`. @internal */
export const now = (started: Started): bigint =>
  started.clock === undefined ? zero : started.clock.unsafeCurrentTimeNanos()

/** Ends `started` with `exit` (once). @internal */
export const end = (started: Started | undefined, exit: Exit.Exit<unknown, unknown>): void => {
  if (started === undefined || started.span.status._tag === "Ended") return
  started.span.end(now(started), exit)
}

/** Adds the event `name` to `started`, at the fiber clock's time. @internal */
export const event = (started: Started | undefined, name: string): void => {
  if (started !== undefined) started.span.event(name, now(started))
}

/**
 * Starts the `sql.transaction` span of a transaction with the client's attributes; `undefined`
 * unless `recorded`.
 *
 * @internal
 */
export const transaction = (fiber: Fiber.RuntimeFiber<any, any>, attributes: Attributes): Started | undefined =>
  recorded(fiber) ? start(fiber, "sql.transaction", attributes) : undefined
