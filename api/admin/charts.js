// Small SVG charts drawn by hand: no library, nothing fetched, nothing inline for the CSP
// to refuse (presentation attributes only).

const NS = "http://www.w3.org/2000/svg";
const W = 600, H = 160, PAD = { left: 36, right: 8, top: 10, bottom: 20 };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A frame with a y axis from 0 to `max` and time labels under the first and last point. */
function frame(max, times) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg" });
  const bottom = H - PAD.bottom;
  for (const share of [0, 0.5, 1]) {
    const y = bottom - share * (bottom - PAD.top);
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
    svg.append(el("text", { x: PAD.left - 4, y: y + 4, class: "axis", "text-anchor": "end" },
      formatNumber(max * share)));
  }
  if (times.length) {
    const label = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(el("text", { x: PAD.left, y: H - 4, class: "axis" }, label(times[0])));
    svg.append(el("text", { x: W - PAD.right, y: H - 4, class: "axis", "text-anchor": "end" },
      label(times[times.length - 1])));
  }
  return svg;
}

function formatNumber(n) {
  return n >= 100 ? Math.round(n).toString() : (Math.round(n * 10) / 10).toString();
}

/** A "nice" top for the axis: at least 1, rounded up to 1, 2 or 5 times a power of ten. */
function top(values) {
  const max = Math.max(1, ...values);
  const power = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= max);
}

const x = (i, n) => PAD.left + (n <= 1 ? 0 : (i / (n - 1)) * (W - PAD.left - PAD.right));
const y = (v, max) => H - PAD.bottom - (v / max) * (H - PAD.bottom - PAD.top);

/** A line (with its area) of `values` at `times`. */
export function line(container, times, values, label) {
  const max = top(values);
  const svg = frame(max, times);
  const points = values.map((v, i) => `${x(i, values.length)},${y(v, max)}`);
  if (points.length) {
    const base = H - PAD.bottom;
    svg.append(el("polygon", {
      points: `${x(0, values.length)},${base} ${points.join(" ")} ${x(values.length - 1, values.length)},${base}`,
      class: "area",
    }));
    svg.append(el("polyline", { points: points.join(" "), class: "line" }));
  }
  svg.append(el("title", {}, `${label}: now ${values[values.length - 1] ?? 0}`));
  container.replaceChildren(svg);
}

/** Stacked bars: `series` is a list of `{values, className, label}`, bottom first. */
export function bars(container, times, series) {
  const n = times.length;
  const totals = times.map((_, i) => series.reduce((sum, s) => sum + s.values[i], 0));
  const max = top(totals);
  const svg = frame(max, times);
  const slot = (W - PAD.left - PAD.right) / Math.max(n, 1);
  const width = Math.max(1, slot * 0.8);
  for (let i = 0; i < n; i++) {
    let base = 0;
    for (const s of series) {
      const v = s.values[i];
      if (v > 0) {
        const rect = el("rect", {
          x: PAD.left + i * slot + (slot - width) / 2,
          y: y(base + v, max),
          width,
          height: y(base, max) - y(base + v, max),
          class: s.className,
        });
        rect.append(el("title", {}, `${new Date(times[i]).toLocaleTimeString()}: ${formatNumber(v)} ${s.label}`));
        svg.append(rect);
      }
      base += v;
    }
  }
  container.replaceChildren(svg);
}
