// Sparklines: small SVG line charts of the last minutes, drawn by hand. The horizontal axis is
// time, so a service seen for ten seconds fills the right edge, not the whole width; a missing
// value or a pause between polls breaks the line, so no data never looks like zero traffic.
import { svg } from "./dom.js";

const WIDTH = 160;
const HEIGHT = 40;
const PAD = 2;

/**
 * A chart of one or more series sharing one vertical scale from zero, over the time window
 * `from`–`to` (epoch ms). `series`: [{ points: [{ at, v }], kind, area? }], `v` a number or
 * null; points further apart than `maxGapMs` are not joined.
 */
export function sparkline(series, { from, to, maxGapMs }, label) {
  const values = series.flatMap((s) => s.points.map((p) => p.v)).filter((v) => Number.isFinite(v));
  const max = Math.max(0, ...values);
  const chart = svg("svg", {
    class: "spark",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": label,
  });
  chart.append(
    svg("line", { class: "baseline", x1: 0, x2: WIDTH, y1: HEIGHT - PAD, y2: HEIGHT - PAD }),
  );
  const x = (at) => Math.max(0, Math.min(WIDTH, ((at - from) / (to - from)) * WIDTH));
  // All zeros draw along the bottom; a scale of zero would divide by it.
  const y = (v) => HEIGHT - PAD - (max === 0 ? 0 : (v / max) * (HEIGHT - 2 * PAD));
  for (const s of series) {
    for (const run of runs(s.points, from, maxGapMs)) {
      const xy = run.map((p) => [x(p.at), y(p.v)]);
      const line = xy
        .map(([px, py], i) => `${i === 0 ? "M" : "L"}${px.toFixed(1)},${py.toFixed(1)}`)
        .join("");
      if (s.area) {
        const first = xy[0][0].toFixed(1);
        const last = xy[xy.length - 1][0].toFixed(1);
        chart.append(
          svg("path", {
            class: `area ${s.kind}`,
            d: `${line}L${last},${HEIGHT - PAD}L${first},${HEIGHT - PAD}Z`,
          }),
        );
      }
      chart.append(svg("path", { class: `line ${s.kind}`, d: line }));
      if (run.length === 1)
        chart.append(svg("circle", { class: `dot ${s.kind}`, cx: xy[0][0], cy: xy[0][1], r: 1.8 }));
    }
  }
  return chart;
}

/** Splits points into runs of finite values no further apart than `maxGapMs`. */
function runs(points, from, maxGapMs) {
  const out = [];
  let run = [];
  let last;
  for (const p of points) {
    if (p.at < from) continue;
    const joined = Number.isFinite(p.v) && last !== undefined && p.at - last <= maxGapMs;
    if (!joined && run.length > 0) {
      out.push(run);
      run = [];
    }
    if (Number.isFinite(p.v)) {
      run.push(p);
      last = p.at;
    } else {
      last = undefined;
    }
  }
  if (run.length > 0) out.push(run);
  return out;
}
