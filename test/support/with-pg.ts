/**
 * Runs a command against a throwaway embedded PostgreSQL (the test kit's `PgServer`), with
 * `DATABASE_URL` and `TEST_DATABASE_URL` set to it; the server is stopped (dir removed) when the
 * command ends, also when it fails or this process is interrupted. Exits with the command's code.
 *
 *   pnpm exec tsx test/support/with-pg.ts -- node main.mjs
 */
import { PgServer } from "@scoped-pool/testing"
import { spawn } from "node:child_process"

const separator = process.argv.indexOf("--")
const [command, ...args] = process.argv.slice(separator === -1 ? 2 : separator + 1)
if (command === undefined) {
  process.stderr.write("usage: with-pg.ts -- <command> [args…]\n")
  process.exit(2)
}

const server = await PgServer.start({ maxConnections: 100 })
const child = spawn(command, args, {
  stdio: "inherit",
  env: { ...process.env, DATABASE_URL: server.url, TEST_DATABASE_URL: server.url }
})
// The child gets the terminal's signals itself; this process waits for it, then cleans up.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal))
const code = await new Promise<number>((resolve) =>
  child.on("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)))
)
await server.stop()
process.exit(code)
