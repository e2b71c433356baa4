/** What every result file records about where and when it was measured. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
export const defaultTestdata = () => process.env.KIKITORI_TESTDATA || join(root, "testdata", "speech");

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  loadavg: number[];
  node: string;
  sqlite: string;
  kikitori: string;
  commit: string;
}

const tryRun = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
};

export function machine(): Machine {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  return {
    cores: cpus().length,
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    sqlite: tryRun("node", [
      "-e",
      "const D=require('better-sqlite3');console.log(new D(':memory:').prepare('select sqlite_version() v').get().v)",
    ]),
    kikitori: pkg.version,
    commit: tryRun("git", ["-C", root, "rev-parse", "--short", "HEAD"]),
  };
}

/** The header of every result file: the command that made it, the machine and the time. */
export function header(command: string) {
  return { command, date: new Date().toISOString(), machine: machine() };
}
