/** Captures log lines, to assert on what the library logs (levels, and that no secret leaks). */
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

export const captureLogs = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: [...(Array.isArray(message) ? message : [message]).map(String), String(cause)].join(" "),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  const provide = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(Logger.withMinimumLogLevel(LogLevel.All), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  const noisy = () => lines.filter((l) => l.level === "WARN" || l.level === "ERROR" || l.level === "FATAL")
  return { lines, provide, noisy }
}
