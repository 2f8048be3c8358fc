/**
 * Where a lease was taken, for leak warnings and `PoolTimeout` messages. Only computed when
 * `leakThreshold` is set: reading spans costs nothing, but a stack trace does.
 *
 * @internal
 */
import type * as Fiber from "effect/Fiber"
import type * as Tracer from "effect/Tracer"

/** @internal */
export const acquisitionSite = (fiber: Fiber.RuntimeFiber<unknown, unknown>): string => {
  const names: Array<string> = []
  let span: Tracer.AnySpan | undefined = fiber.currentSpan
  while (span !== undefined && names.length < 4) {
    if (span._tag === "Span") {
      names.push(span.name)
      span = span.parent._tag === "Some" ? span.parent.value : undefined
    } else {
      span = undefined
    }
  }
  if (names.length > 0) return `span ${names.join(" < ")}`
  const frame = new Error().stack?.split("\n").slice(2).find((line) => !line.includes("node_modules"))
  return frame !== undefined
    ? frame.trim()
    : "unknown (wrap the caller in Effect.withSpan or Effect.fn to see where)"
}
