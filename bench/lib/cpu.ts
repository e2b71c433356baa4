/**
 * CPU time of this process and everything it started (worker processes, peers' Python, whisper.cpp's CLI):
 * on a shared machine wall time measures the neighbours as much as the code, CPU time much less so.
 * Linux /proc: live descendants' own time plus, for each, the time of its children it has reaped
 * (a finished CLI run lands in this process's cutime/cstime once Node reaps it).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

let ticksPerSecond: number | undefined;

/** utime, stime, cutime, cstime (fields 14-17 of /proc/<pid>/stat) and the parent pid. */
function stat(pid: string): { ppid: string; ticks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ")".
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: f[1]!, ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** CPU seconds used so far by this process and its descendants; undefined where /proc is missing. */
export function treeCpuSeconds(root = process.pid): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  const children = new Map<string, { pid: string; ticks: number }[]>();
  let total = 0;
  for (const pid of pids) {
    const s = stat(pid);
    if (!s) continue;
    if (pid === `${root}`) total += s.ticks;
    else children.set(s.ppid, [...(children.get(s.ppid) ?? []), { pid, ticks: s.ticks }]);
  }
  const walk = (pid: string) => {
    for (const c of children.get(pid) ?? []) {
      total += c.ticks;
      walk(c.pid);
    }
  };
  walk(`${root}`);
  return total / ticksPerSecond;
}
