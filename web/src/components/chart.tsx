import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Line {
  label: string;
  color: string;
  /** Draw as steps (counts) rather than straight lines. */
  stepped?: boolean;
}

/**
 * A time-series chart (uPlot): `times` in epoch seconds, one array of values per line. Follows its
 * container's width; the values are also given as a table for screen readers.
 */
export function Chart({
  title,
  times,
  lines,
  values,
}: {
  title: string;
  times: number[];
  lines: Line[];
  values: (number | null)[][];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    const el = box.current!;
    const stepped = uPlot.paths.stepped?.({ align: 1 });
    plot.current = new uPlot(
      {
        width: el.clientWidth || 300,
        height: 180,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        series: [
          {},
          ...lines.map((l) => ({
            label: l.label,
            stroke: l.color,
            width: 2,
            paths: l.stepped ? stepped : undefined,
            points: { show: false },
          })),
        ],
        axes: [{ stroke: "currentColor" }, { stroke: "currentColor", size: 40 }],
      },
      [times, ...values] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: el.clientWidth || 300, height: 180 }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
    };
  }, [lines.map((l) => l.label).join()]);
  useEffect(() => {
    plot.current?.setData([times, ...values] as uPlot.AlignedData);
  }, [times, values]);
  const last = times.length - 1;
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} aria-hidden="true" />
      <table class="sr-only">
        <caption>{title}, latest value</caption>
        <tbody>
          {lines.map((l, i) => (
            <tr>
              <th scope="row">{l.label}</th>
              <td>{last >= 0 ? (values[i]?.[last] ?? "–") : "–"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
