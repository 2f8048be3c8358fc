import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as PgPool from "@scoped-pool/pg/PgPool"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { inject } from "vitest"
import * as PgTestSetup from "../src/PgTestSetup.js"

// Runs the fixture project (a user's project in miniature: its own vitest config, a global
// setup that seeds the template, test files on PgTest.layer) in a child vitest with a temp dir
// of its own, and checks what the run left behind.
const project = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "fixtures", "project")
const vitestBin = Path.join(Path.dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs")

interface Run {
  readonly child: ChildProcess
  readonly output: () => string
  readonly log: () => ReadonlyArray<string>
  readonly tmp: string
  readonly exited: Promise<number | null>
}

const runFixture = (include: string) =>
  Effect.acquireRelease(
    Effect.sync((): Run => {
      const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "scoped-pool-fixture-"))
      Fs.chmodSync(tmp, 0o755) // as root, the server's user must enter it
      const logFile = Path.join(tmp, "log")
      Fs.writeFileSync(logFile, "")
      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(process.env)) {
        if (v !== undefined && !k.startsWith("VITEST") && k !== "TEST_DATABASE_URL") env[k] = v
      }
      const child = spawn(process.execPath, [vitestBin, "run", "--config", Path.join(project, "vitest.config.ts")], {
        cwd: project,
        env: { ...env, TMPDIR: tmp, FIXTURE_LOG: logFile, FIXTURE_INCLUDE: include, CI: "" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout!.on("data", (chunk) => output += chunk)
      child.stderr!.on("data", (chunk) => output += chunk)
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      return {
        child,
        output: () => output,
        log: () => Fs.readFileSync(logFile, "utf8").split("\n").filter((l) => l !== ""),
        tmp,
        exited
      }
    }),
    (run) =>
      Effect.promise(async () => {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL")
        await run.exited
        Fs.rmSync(run.tmp, { recursive: true, force: true })
      })
  )

/** What a finished run left: server dirs in its temp dir, postgres processes, whether its port still answers. */
const leftovers = (run: Run) =>
  Effect.promise(async () => {
    const dirs = Fs.readdirSync(run.tmp).filter((name) => name.startsWith("scoped-pool-pg-"))
    let processes = ""
    try {
      processes = execFileSync("pgrep", ["-f", run.tmp], { encoding: "utf8" })
    } catch {
      processes = "" // pgrep exits 1 when nothing matches
    }
    const urlLine = run.log().find((l) => l.startsWith("url "))
    const port = urlLine === undefined ? undefined : Number(new URL(urlLine.slice(4)).port)
    const answers = port === undefined ? false : await new Promise<boolean>((resolve) => {
      const socket = Net.connect(port, "127.0.0.1")
      socket.once("connect", () => (socket.destroy(), resolve(true)))
      socket.once("error", () => resolve(false))
    })
    return { dirs, processes: processes.trim(), answers, port }
  })

/** Waits (bounded, wall clock) until the child printed `text`: its output is an external system. */
const printed = (run: Run, text: string, withinMillis: number) =>
  Effect.promise(async () => {
    const deadline = Date.now() + withinMillis
    while (!run.output().includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    return run.output().includes(text)
  })

const templatesOn = (url: string) =>
  Effect.flatMap(
    PgPool.PgPool,
    (pg) => pg.sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 't_template_%'`
  ).pipe(
    Effect.provide(PgPool.layer({ url: Redacted.make(url), max: 1, applicationName: "test-PgTestSetup" })),
    Effect.map((rows) => rows[0]!.n)
  )

describe("PgTestSetup.start", () => {
  it.live(
    "a failing seed rejects with its error, drops the template, and stops the embedded server",
    () =>
      Effect.gen(function*() {
        const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "scoped-pool-seed-"))
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
        const embedded = yield* Effect.promise(() =>
          PgTestSetup.start({ seed: Effect.fail("no such migration") }).then(() => "resolved", (e) => String(e))
        )
        assert.include(embedded, "no such migration")
        assert.deepStrictEqual(Fs.readdirSync(tmp), [])

        // On an external server (the run's): the half-seeded template is dropped.
        const url = inject("@scoped-pool/testing").url
        const external = yield* Effect.promise(() =>
          PgTestSetup.start({ databaseUrl: url, seed: Effect.dieMessage("seed crashed") }).then(
            () => "resolved",
            (e) => String(e)
          )
        )
        assert.include(external, "seed crashed")
        assert.strictEqual(yield* templatesOn(url), 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "with a seed on an external server: the template is seeded once and dropped by stop",
    () =>
      Effect.gen(function*() {
        const url = inject("@scoped-pool/testing").url
        const handle = yield* Effect.promise(() =>
          PgTestSetup.start({
            databaseUrl: url,
            seed: Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE seeded (id int)`)
          })
        )
        assert.match(handle.template ?? "", /^t_template_/)
        assert.strictEqual(yield* templatesOn(url), 1)
        yield* Effect.promise(() => handle.stop())
        assert.strictEqual(yield* templatesOn(url), 0)
      }),
    60_000
  )
})

describe("PgTestSetup (a user's project run by vitest)", () => {
  it.live(
    "seeds the template once per run, gives each file its own copy, and stops the server at the end",
    () =>
      Effect.gen(function*() {
        const run = yield* runFixture("{a,b}.test.ts")
        const code = yield* Effect.promise(() => run.exited)
        assert.strictEqual(code, 0, run.output())
        const log = run.log()
        assert.strictEqual(log.filter((l) => l === "seed").length, 1)
        const databases = log.filter((l) => l.startsWith("database "))
        assert.strictEqual(databases.length, 2)
        assert.notStrictEqual(databases[0], databases[1])
        const left = yield* leftovers(run)
        assert.isDefined(left.port)
        assert.deepStrictEqual({ dirs: left.dirs, processes: left.processes, answers: left.answers }, {
          dirs: [],
          processes: "",
          answers: false
        })
      }).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "a file that leaves a backend open fails, naming it; the server is stopped all the same",
    () =>
      Effect.gen(function*() {
        const run = yield* runFixture("leak.test.ts")
        const code = yield* Effect.promise(() => run.exited)
        assert.strictEqual(code, 1, run.output())
        assert.include(run.output(), "backend(s) of \"test-leak\" still on the server")
        const left = yield* leftovers(run)
        assert.deepStrictEqual({ dirs: left.dirs, processes: left.processes, answers: left.answers }, {
          dirs: [],
          processes: "",
          answers: false
        })
      }).pipe(Effect.scoped),
    90_000
  )

  it.live("SIGINT in the middle of a run stops the server and removes its dir", () =>
    Effect.gen(function*() {
      const run = yield* runFixture("hang.test.ts")
      assert.isTrue(yield* printed(run, "FIXTURE-RUNNING", 60_000), run.output())
      run.child.kill("SIGINT")
      yield* Effect.promise(() => run.exited)
      const left = yield* leftovers(run)
      assert.isDefined(left.port)
      assert.deepStrictEqual({ dirs: left.dirs, processes: left.processes, answers: left.answers }, {
        dirs: [],
        processes: "",
        answers: false
      })
    }).pipe(Effect.scoped), 90_000)
})
