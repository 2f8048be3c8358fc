import { assert, describe, it } from "@effect/vitest"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as PgServer from "../src/PgServer.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const isRoot = process.getuid?.() === 0

const currentUser = (url: string) =>
  Effect.flatMap(PgPool.PgPool, (pg) => pg.sql<{ user: string }>`SELECT current_user AS user`).pipe(
    Effect.provide(PgPool.layer({ url: Redacted.make(url), max: 1, applicationName: "test-PgServer" })),
    Effect.map((rows) => rows[0]!.user)
  )

describe("PgServer.start", () => {
  // Regression: as root, a temp or working dir of mode 0700 made initdb (run as the postgres
  // user) fail on the password file, or spawn fail with an unhandled EACCES, leaving an empty
  // data dir behind.
  it.live(
    "starts from a working dir and a TMPDIR of mode 0700, answers, and leaves no dir",
    () =>
      Effect.gen(function*() {
        const closed = Fs.mkdtempSync(Path.join(Os.tmpdir(), "scoped-pool-closed-"))
        Fs.chmodSync(closed, 0o700)
        const tmp = Path.join(closed, "tmp")
        Fs.mkdirSync(tmp, { mode: 0o700 })
        const before = { cwd: process.cwd(), tmpdir: process.env.TMPDIR }
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            process.chdir(before.cwd)
            if (before.tmpdir === undefined) delete process.env.TMPDIR
            else process.env.TMPDIR = before.tmpdir
            Fs.rmSync(closed, { recursive: true, force: true })
          })
        )
        process.chdir(closed)
        process.env.TMPDIR = tmp
        const server = yield* PgServer.make({ maxConnections: 20 })
        assert.strictEqual(yield* currentUser(server.url), "postgres")
        yield* Effect.promise(() => server.stop())
        assert.isFalse(Fs.existsSync(server.dataDir))
        assert.isFalse(Fs.existsSync(Path.dirname(server.dataDir)))
        assert.deepStrictEqual(Fs.readdirSync(tmp).filter((n) => n.startsWith(PgServer.dataDirPrefix)), [])
      }).pipe(Effect.scoped),
    60_000
  )

  // Regression: POSIX shared-memory segments outlived servers killed outright (235 of them,
  // 122 MB, in /dev/shm on one machine); in the data dir they go with it.
  it.scopedLive("keeps its dynamic shared memory in its data dir, none in /dev/shm", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(Effect.promise(() => PgServer.start()), (s) => Effect.promise(s.stop))
      const type = yield* Effect.flatMap(
        PgPool.PgPool,
        (pg) => pg.sql<{ type: string }>`SELECT current_setting('dynamic_shared_memory_type') AS type`
      ).pipe(
        Effect.provide(PgPool.layer({ url: Redacted.make(server.url), max: 1, applicationName: "test-PgServer" })),
        Effect.map((rows) => rows[0]!.type)
      )
      assert.strictEqual(type, "mmap")
      // The postmaster keeps its control segment mapped for its life: this server's own segment,
      // whatever other servers on the machine (tests running beside this one) do in /dev/shm.
      const pid = Fs.readFileSync(Path.join(server.dataDir, "postmaster.pid"), "utf8").split("\n")[0]
      const maps = Fs.readFileSync(`/proc/${pid}/maps`, "utf8")
      assert.include(maps, Path.join(server.dataDir, "pg_dynshmem", "mmap."))
      assert.notInclude(maps, "/dev/shm/PostgreSQL.")
    }), 60_000)

  it.live("runs as a normal user (as nobody through setpriv when the tests run as root)", () =>
    Effect.sync(() => {
      const script = Path.join(here, "fixtures", "start-stop.ts")
      const tsx = createRequire(import.meta.url).resolve("tsx")
      const asNobody = isRoot && Fs.existsSync("/usr/bin/setpriv")
      const command = asNobody
        ? ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath]
        : [process.execPath]
      const result = spawnSync(command[0]!, [...command.slice(1), "--import", tsx, script], {
        cwd: here,
        env: { ...process.env, HOME: Os.tmpdir(), TMPDIR: "/tmp" },
        encoding: "utf8",
        timeout: 60_000
      })
      assert.strictEqual(result.status, 0, `${result.stdout}\n${result.stderr}`)
      const match = /uid (\d+) user (\S+) dataDir (\S+)/.exec(result.stdout)
      assert.isNotNull(match, result.stdout)
      if (asNobody) assert.notStrictEqual(match![1], "0")
      assert.strictEqual(match![2], "postgres")
      assert.isFalse(Fs.existsSync(match![3]!))
    }), 90_000)

  // Regression: a SIGTERM to the whole process group (as `timeout` or a CI runner sends it)
  // also reached the server's own processes, which went on writing into the data dir while
  // it was removed: the dir was left behind (2 of 3 tries on a loaded machine).
  // A signal to the job (a shell's or a CI runner's), through tsx's CLI as `tsx script.ts` runs;
  // and the process killed outright, alone, where only the server's reaper can clean up.
  const cases = [
    { when: "starting", how: "SIGTERM to the process group" },
    { when: "started", how: "SIGTERM to the process group" },
    { when: "started", how: "SIGKILL of the process alone" }
  ] as const
  for (const { how, when } of cases) {
    it.live(`a ${how} while ${when} leaves no dir and no process`, () =>
      Effect.gen(function*() {
        const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "scoped-pool-group-"))
        Fs.chmodSync(tmp, 0o755)
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(tmp, { recursive: true, force: true })))
        // Through tsx's CLI, as `tsx script.ts` runs: a parent that relays signals to its child.
        const tsxCli = createRequire(import.meta.url).resolve("tsx/cli")
        const fixture = Path.join(here, "fixtures", "hold-server.ts")
        const group = how === "SIGTERM to the process group"
        const child = spawn(process.execPath, group ? [tsxCli, fixture] : ["--import", "tsx", fixture], {
          cwd: here,
          detached: true, // its own process group, as a job under a shell or a CI runner
          env: { ...process.env, TMPDIR: tmp },
          stdio: ["ignore", "pipe", "pipe"]
        })
        let output = ""
        child.stdout!.on("data", (chunk) => output += chunk)
        child.stderr!.on("data", (chunk) => output += chunk)
        const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
        yield* Effect.addFinalizer(() =>
          Effect.promise(async () => {
            try {
              process.kill(-child.pid!, "SIGKILL") // whatever of the job is left
            } catch {
              // none
            }
            await exited
          })
        )
        // The child's output is an external system: wait for it, bounded.
        const seen = yield* Effect.promise(async () => {
          const deadline = Date.now() + 60_000
          while (!output.includes(`${when}\n`) && !output.includes(`${when} `) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 10))
          }
          return output
        })
        assert.include(seen, when)
        if (group) process.kill(-child.pid!, "SIGTERM")
        else process.kill(child.pid!, "SIGKILL")
        yield* Effect.promise(() => exited)
        // The process cleans up on its way out; when its parent kills it outright first (tsx's CLI
        // does 60 ms after relaying a signal it saw no answer to, which a loaded machine misses),
        // the server's reaper does it once the process is gone: wait for that, bounded.
        const dirs = () => Fs.readdirSync(tmp).filter((n) => n.startsWith(PgServer.dataDirPrefix))
        const processes = () => spawnSync("pgrep", ["-f", tmp], { encoding: "utf8" }).stdout.trim()
        yield* Effect.promise(async () => {
          const deadline = Date.now() + 15_000
          while ((dirs().length > 0 || processes() !== "") && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50))
          }
        })
        assert.deepStrictEqual(dirs(), [], output)
        assert.strictEqual(processes(), "", output)
      }).pipe(Effect.scoped), 90_000)
  }

  it.live("a failed start rejects with a typed error and leaves no dir", () =>
    Effect.gen(function*() {
      const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "scoped-pool-failed-"))
      Fs.chmodSync(tmp, 0o755)
      const before = process.env.TMPDIR
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (before === undefined) delete process.env.TMPDIR
          else process.env.TMPDIR = before
          Fs.rmSync(tmp, { recursive: true, force: true })
        })
      )
      process.env.TMPDIR = tmp
      const result = yield* Effect.either(PgServer.make({ settings: { shared_buffers: "not-a-size" } }))
      assert.deepStrictEqual(Fs.readdirSync(tmp), [])
      assert.isTrue(result._tag === "Left")
      const error = result._tag === "Left" ? result.left : undefined
      assert.strictEqual(error?._tag, "PgServerError")
      assert.strictEqual(error?.reason, "Exited")
      assert.include(error?.message, "shared_buffers")
    }).pipe(Effect.scoped), 60_000)
})
