/** Runs a TypeScript fixture in a child Node process (through tsx) and reports how it ended. */
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** A running child, its output so far, and a promise of how it ended. */
export interface Child {
  readonly process: ChildProcess
  readonly output: () => string
  readonly exited: Promise<
    { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly at: number }
  >
}

/** Starts `test/fixtures/<name>` with extra environment variables; killed when the scope closes. */
export const spawnFixture = (name: string, env: Record<string, string>) =>
  spawnFile(Path.join("test", "fixtures", name), env)

/**
 * Starts a TypeScript file (path relative to the repository root) with extra environment
 * variables, and without those named in `unset`; killed when the scope closes.
 */
export const spawnFile = (file: string, env: Record<string, string>, unset: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const child = spawn(process.execPath, ["--import", "tsx", Path.join(root, file)], {
        cwd: root,
        env: Object.fromEntries(
          Object.entries({ ...process.env, ...env }).filter(([name]) => !unset.includes(name))
        ),
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout!.on("data", (chunk) => output += chunk)
      child.stderr!.on("data", (chunk) => output += chunk)
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
        child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() }))
      )
      return { process: child, output: () => output, exited }
    }),
    (child) =>
      Effect.promise(async () => {
        if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL")
        await child.exited
      })
  )
