/**
 * The COPY rounds of several `pnpm bench --copy` runs pooled: each round's own ratio to
 * pg-copy-streams (its time ÷ ours, the two run one after the other, at the server's speed of
 * that moment), median and rounds won over all the runs' rounds, with the backends' CPU time the
 * same way and what each client adds on top of its backend (elapsed − server CPU). One run's 11
 * rounds leave the median a few percent to either side on this machine (the backend's own time
 * for identical work moves by 5-50 % between rounds); pooled runs narrow it, and a bootstrap
 * interval of the median says by how much.
 *
 *   node --import tsx bench/copy-pooled.ts bench/results/copy-runs/*.json
 *
 * Reads the runs' `latest.json` (as saved); prints a markdown table.
 */
import { readFileSync } from "node:fs"
import { median, medianInterval } from "./shared.js"

interface Round {
  readonly elapsedMs?: number
  readonly serverCpuMs?: number
}
interface CopyRow {
  readonly direction: "load" | "export"
  readonly method: string
  readonly rounds: ReadonlyArray<Round>
}

/** The 2.5th and 97.5th percentiles of the median over 10,000 resamples (a fixed seed: the same interval each run). */
const comparisons: ReadonlyArray<readonly [direction: "load" | "export", ours: string, theirs: string]> = [
  ["load", "COPY FROM STDIN (copyFrom)", "COPY FROM STDIN"],
  ["export", "COPY TO STDOUT (copyTo)", "COPY TO STDOUT"],
  ["export", "COPY TO STDOUT (copyTo, readBatch 0)", "COPY TO STDOUT"],
  ["load", "COPY FROM STDIN (copyFrom)", "multi-row INSERT via SqlClient"]
]

const files = process.argv.slice(2)
if (files.length === 0) {
  console.error("usage: node --import tsx bench/copy-pooled.ts <latest.json of a --copy run>…")
  process.exit(2)
}
const runs = files.map((f) => (JSON.parse(readFileSync(f, "utf8")) as { copy: ReadonlyArray<CopyRow> }).copy)

console.log(`${files.length} runs\n`)
console.log(
  "| direction | ours | against | median ratio (bootstrap 95 %) | rounds ours was faster | server CPU, theirs ÷ ours | client adds, ours / theirs (ms) |"
)
console.log("|---|---|---|---:|---:|---:|---:|")
for (const [direction, ours, theirs] of comparisons) {
  const ratios: Array<number> = []
  const server: Array<number> = []
  const adds: Array<number> = []
  const theirAdds: Array<number> = []
  for (const copy of runs) {
    const o = copy.find((x) => x.direction === direction && x.method === ours)
    const t = copy.find((x) => x.direction === direction && x.method === theirs)
    if (o === undefined || t === undefined || o.rounds.length !== t.rounds.length) continue
    o.rounds.forEach((x, i) => {
      const y = t.rounds[i]!
      if (x.elapsedMs && y.elapsedMs) ratios.push(y.elapsedMs / x.elapsedMs)
      if (x.serverCpuMs && y.serverCpuMs && x.elapsedMs && y.elapsedMs) {
        server.push(y.serverCpuMs / x.serverCpuMs)
        adds.push(x.elapsedMs - x.serverCpuMs)
        theirAdds.push(y.elapsedMs - y.serverCpuMs)
      }
    })
  }
  if (ratios.length === 0) continue
  console.log(
    `| ${direction} | ${ours} | ${theirs} | ${median(ratios).toFixed(3)} (${
      medianInterval(ratios).map((x) => x.toFixed(3)).join("–")
    }) | ${ratios.filter((x) => x > 1).length} / ${ratios.length} | ${
      server.length ? median(server).toFixed(3) : "—"
    } | ${adds.length ? `${median(adds).toFixed(0)} / ${median(theirAdds).toFixed(0)}` : "—"} |`
  )
}
