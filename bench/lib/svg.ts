/** Small, dependency-free SVG charts for BENCHMARKS.md: horizontal bars with an optional target line. */

export interface Bar {
  label: string;
  value: number;
  /** Shown after the bar instead of the plain value. */
  text?: string;
}

export interface BarChart {
  title: string;
  unit: string;
  bars: Bar[];
  /** A vertical dashed line (e.g. a target) at this value. */
  target?: { value: number; label: string };
  /** Lines printed under the chart: command, machine, versions, date. */
  caption: string[];
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function barChart(c: BarChart): string {
  const labelW = 300;
  const plotW = 420;
  const rowH = 24;
  const top = 40;
  const width = labelW + plotW + 120;
  const finite = c.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0));
  const max = Math.max(...finite, c.target?.value ?? 0) * 1.05 || 1;
  const x = (v: number) => labelW + (Math.max(0, v) / max) * plotW;
  const plotBottom = top + c.bars.length * rowH;
  const height = plotBottom + 30 + c.caption.length * 15;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(c.title)} (${esc(c.unit)})</text>`,
  ];
  c.bars.forEach((b, i) => {
    const y = top + i * rowH;
    const v = finite[i]!;
    out.push(
      `<text x="${labelW - 8}" y="${y + 16}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${labelW}" y="${y + 4}" width="${Math.max(1, x(v) - labelW).toFixed(1)}" height="${rowH - 8}" fill="${b.label.startsWith("kikitori") ? "#d9534f" : "#4a7fb5"}"/>`,
      `<text x="${(x(v) + 6).toFixed(1)}" y="${y + 16}">${esc(b.text ?? String(b.value))}</text>`,
    );
  });
  if (c.target) {
    const tx = x(c.target.value).toFixed(1);
    out.push(
      `<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${plotBottom}" stroke="#222" stroke-dasharray="4 3"/>`,
      `<text x="${tx}" y="${top - 8}" text-anchor="middle" font-size="11">${esc(c.target.label)}</text>`,
    );
  }
  c.caption.forEach((line, i) =>
    out.push(`<text x="10" y="${plotBottom + 24 + i * 15}" font-size="10" fill="#555">${esc(line)}</text>`),
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}
