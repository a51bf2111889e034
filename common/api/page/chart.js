// A line chart in SVG: one line per series over epochs, every point a circle with data-testid="curve-point".
import {h, s} from "./dom.js";
import {colour} from "./boxes.js";

const W = 400, H = 220, PAD = {left: 46, right: 10, top: 12, bottom: 30};

const tick = (v) => (v === 0 ? "0" : Math.abs(v) >= 0.01 ? Number(v.toPrecision(3)).toString() : v.toExponential(1));

export function lineChart(title, rows, series, epochs) {
  const present = series.filter((key) => rows.some((r) => typeof r[key] === "number"));
  const values = rows.flatMap((r) => present.map((k) => r[k]).filter((v) => typeof v === "number"));
  const top = Math.max(...values) > 0 ? Math.max(...values) : 1, bottom = Math.min(0, ...values);
  const lastEpoch = Math.max(epochs || 1, ...rows.map((r) => r.epoch), 2);
  const x = (e) => PAD.left + ((e - 1) / (lastEpoch - 1)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - ((v - bottom) / (top - bottom || 1)) * (H - PAD.top - PAD.bottom);
  const svg = s("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
                        "aria-label": `${title}: ${present.join(", ")} over ${rows.length} epochs`},
    s("line", {x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom, class: "axis"}),
    s("line", {x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom, class: "axis"}),
    s("text", {x: PAD.left - 6, y: PAD.top + 4, class: "tick", "text-anchor": "end"}, tick(top)),
    s("text", {x: PAD.left - 6, y: H - PAD.bottom, class: "tick", "text-anchor": "end"}, tick(bottom)),
    s("text", {x: W / 2, y: H - 6, class: "tick", "text-anchor": "middle"}, `epoch (of ${epochs || "?"})`));
  present.forEach((key, i) => {
    const points = rows.filter((r) => typeof r[key] === "number").sort((a, b) => a.epoch - b.epoch);
    svg.append(s("polyline", {class: "line", stroke: colour(i), points: points.map((r) => `${x(r.epoch)},${y(r[key])}`).join(" ")}));
    for (const r of points) svg.append(s("circle", {cx: x(r.epoch), cy: y(r[key]), r: 3.5, fill: colour(i),
      "data-testid": "curve-point", "data-series": key, "data-epoch": r.epoch}, s("title", {}, `${key} epoch ${r.epoch}: ${r[key]}`)));
  });
  return h("figure", {class: "panel chart-box"}, h("figcaption", {}, title), svg,
    h("ul", {class: "legend"}, present.map((key, i) => h("li", {}, h("span", {class: "swatch", style: `background:${colour(i)}`}), key))));
}
