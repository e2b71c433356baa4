import { readFileSync } from "node:fs";
import { hostname } from "node:os";

/** This kikitori process, as instance records name their owner: `<host>/<pid>/<process start, epoch ms>`. */
export const THIS_NODE = `${hostname()}/${process.pid}/${Math.round(performance.timeOrigin)}`;

/**
 * Whether process `pid` started within a few seconds of `startedAtMs`, so a recorded pid that the system
 * has since given to another process is never taken for the recorded one. Linux only (/proc); elsewhere false.
 */
export function startedNear(pid: number, startedAtMs: number): boolean {
  try {
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]);
    // Field 22 of /proc/<pid>/stat, counted after the parenthesised command name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const startedMs = (btime + ticks / 100) * 1000;
    return Number.isFinite(startedMs) && Math.abs(startedMs - startedAtMs) < 10_000;
  } catch {
    return false;
  }
}

/**
 * Whether the kikitori process `node` (on this host) has ended, so its instances are orphans; a record
 * without a node (written before nodes were recorded) counts as an orphan.
 */
export function nodeGone(node: string | undefined): boolean {
  const m = node ? /^(.*)\/(\d+)\/(\d+)$/.exec(node) : null;
  if (!m) return true;
  return !startedNear(Number(m[2]), Number(m[3]));
}
