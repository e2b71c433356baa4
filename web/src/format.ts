/** Display helpers: durations, sizes, times. */

export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function bytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}

export const time = (t: string | number | undefined) =>
  t === undefined ? "–" : new Date(typeof t === "number" && t < 1e11 ? t * 1000 : t).toLocaleTimeString();

export const dateTime = (t: string | number | undefined) =>
  t === undefined ? "–" : new Date(typeof t === "number" && t < 1e11 ? t * 1000 : t).toLocaleString();

/** Seconds as m:ss.s (player times, segment starts). */
export function clock(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}

/** The last part of an s3:// location (a file name to show). */
export const baseName = (location: string) => location.slice(location.lastIndexOf("/") + 1);
