/**
 * A hand-written SVG bar chart: one group of bars per workload, one bar per contender, each
 * bar the contender's throughput as a ratio to pg-pool measured in the same run.
 */

export interface ChartSeries {
  readonly name: string
  readonly color: string
}

export interface ChartGroup {
  readonly label: string
  /** Ratio to pg-pool per series name; undefined = not measured. */
  readonly values: Readonly<Record<string, number | undefined>>
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

export const renderChart = (options: {
  readonly title: string
  readonly subtitle: string
  readonly series: ReadonlyArray<ChartSeries>
  readonly groups: ReadonlyArray<ChartGroup>
  readonly cap?: number
}): string => {
  const { groups, series } = options
  const barW = 16
  const gap = 4
  const groupPad = 28
  const groupW = series.length * (barW + gap) - gap
  const left = 56
  const top = 70
  const plotH = 260
  const bottom = 70
  const width = left + groups.length * (groupW + groupPad) + 20
  const legendRows = Math.ceil(series.length / 4)
  const height = top + plotH + bottom + legendRows * 18
  const maxValue = Math.max(1.2, ...groups.flatMap((g) => Object.values(g.values).filter((v) => v !== undefined)))
  // The axis stops at `cap` (pgbench, a C client, can be 10× pg-pool): taller bars are cut
  // with a zig-zag and labelled with their value.
  const cap = options.cap ?? 2.5
  const yMax = Math.min(Math.ceil(maxValue * 4) / 4, cap)
  const y = (v: number) => top + plotH - (v / yMax) * plotH
  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="11">`
  )
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="600">${escape(options.title)}</text>`)
  out.push(`<text x="${left}" y="42" fill="#555">${escape(options.subtitle)}</text>`)
  // grid and y axis
  const step = yMax > 3 ? 0.5 : 0.25
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1)
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${left - 6}" y="${yy}" dy="3" text-anchor="end" fill="#555">${v.toFixed(2)}×</text>`)
  }
  const one = y(1).toFixed(1)
  out.push(`<line x1="${left}" x2="${width - 10}" y1="${one}" y2="${one}" stroke="#333" stroke-dasharray="4 3"/>`)
  out.push(`<text x="${width - 12}" y="${one}" dy="-4" text-anchor="end" fill="#333">pg-pool = 1.00×</text>`)
  groups.forEach((group, gi) => {
    const x0 = left + groupPad / 2 + gi * (groupW + groupPad)
    series.forEach((s, si) => {
      const v = group.values[s.name]
      if (v === undefined) return
      const x = x0 + si * (barW + gap)
      const clipped = v > yMax
      const yy = y(Math.min(v, yMax))
      const h = (top + plotH - yy).toFixed(1)
      const title = escape(`${s.name} — ${group.label}: ${v.toFixed(2)}× pg-pool`)
      out.push(
        `<rect x="${x}" y="${
          yy.toFixed(1)
        }" width="${barW}" height="${h}" fill="${s.color}"><title>${title}</title></rect>`
      )
      if (clipped) {
        const zy = yy + 8
        const points = [[x - 1, zy + 3], [x + barW / 3, zy - 2], [x + (2 * barW) / 3, zy + 3], [x + barW + 1, zy - 2]]
        out.push(
          `<polyline points="${
            points.map((p) => p.join(",")).join(" ")
          }" fill="none" stroke="#fff" stroke-width="2.5"/>`
        )
      }
      const weight = clipped ? ` font-weight="600"` : ""
      const label = v.toFixed(v >= 10 ? 1 : 2)
      out.push(
        `<text x="${x + barW / 2}" y="${
          (yy - 3).toFixed(1)
        }" text-anchor="middle" font-size="8" fill="#333"${weight}>${label}</text>`
      )
    })
    const lines = group.label.split("\n")
    lines.forEach((line, li) => {
      out.push(
        `<text x="${x0 + groupW / 2}" y="${top + plotH + 16 + li * 13}" text-anchor="middle">${escape(line)}</text>`
      )
    })
  })
  out.push(`<line x1="${left}" x2="${width - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`)
  // legend
  const legendTop = top + plotH + bottom - 14
  series.forEach((s, i) => {
    const col = i % 4
    const row = Math.floor(i / 4)
    const lx = left + col * 190
    const ly = legendTop + row * 18
    out.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="12" fill="${s.color}"/>`)
    out.push(`<text x="${lx + 17}" y="${ly + 1}">${escape(s.name)}</text>`)
  })
  out.push(`</svg>`)
  return out.join("\n") + "\n"
}
