/**
 * Machines on one machine: Linux network namespaces (`ip netns`, iproute2), each with its own address on
 * a bridge, so that every kikitori process reaches the others only through the network, as on separate
 * hosts. Needs root (CI and these machines run as root). The test process itself joins the bridge
 * too (its own veth in the root namespace), so it talks to the API as a client from outside.
 *
 *   hub (bridge, in the first namespace) ── veth ── each other namespace, and the root namespace
 *
 * Addresses are 10.<a>.<b>.x/24 picked per run; only these namespaces hold them.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Api, repoRoot, tempDir, waitFor } from "./server.js";
import { openBackends } from "../../src/backends.js";
import { loadConfig } from "../../src/config.js";
import { createKey } from "../../src/auth/keys.js";
import { MOTO_CREDENTIALS } from "./moto.js";

const ip = (...args: string[]) => execFileSync("ip", args, { encoding: "utf8" });
/** `ip ...` where failing is fine (removing what may be gone already). */
const ipQuietly = (...args: string[]) => {
  try {
    execFileSync("ip", args, { stdio: "ignore" });
  } catch {
    // gone already
  }
};

/** Why network namespaces cannot be used here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "network namespaces need root";
  try {
    const probe = `kkprobe${process.pid}`;
    ip("netns", "add", probe);
    ip("netns", "del", probe);
    return undefined;
  } catch (e) {
    return `ip netns is not usable here: ${(e as Error).message.split("\n")[0]}`;
  }
}

export interface Netns {
  /** Namespace names, by role. */
  names: Record<string, string>;
  /** Each namespace's address. */
  addr: Record<string, string>;
  /** Runs `command` inside a namespace, as a child of the test process. */
  spawn(ns: string, command: string, args: string[], env?: Record<string, string>): ChildProcess;
  /** Cuts (down) or restores (up) a namespace's only link to the others. */
  link(ns: string, state: "up" | "down"): void;
  /** SIGKILLs every process in the namespace (a machine gone at once). */
  killAll(ns: string): number;
  destroy(): void;
}

/** Each run's namespaces are named `<tag><role>`; a marker file per tag holds the pid of the process that made them. */
const markers = join(tmpdir(), "kikitori-netns");

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Removes what a run killed before it could clean up (SIGKILL, a crash) left behind: its namespaces and link. */
function removeStale(): void {
  mkdirSync(markers, { recursive: true });
  for (const tag of readdirSync(markers)) {
    const pid = Number(readFileSync(join(markers, tag), "utf8"));
    if (alive(pid)) continue;
    const names = ip("netns", "list")
      .split("\n")
      .map((l) => l.split(" ")[0]!)
      .filter((n) => n.startsWith(tag));
    for (const ns of names) {
      killPids(ns);
      ipQuietly("netns", "del", ns);
    }
    ipQuietly("link", "del", `${tag}p0`);
    rmSync(join(markers, tag), { force: true });
  }
}

function killPids(ns: string): number {
  let pids: number[] = [];
  try {
    pids = ip("netns", "pids", ns).split("\n").filter(Boolean).map(Number);
  } catch {
    return 0; // gone already
  }
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  return pids.length;
}

/**
 * Creates namespaces named after `roles` (the first holds the bridge) and connects them and this process.
 * They go with `destroy()`, and also when this process exits or is interrupted without calling it; what a
 * killed run left behind is removed by the next run.
 */
export function createNetns(roles: string[]): Netns {
  try {
    removeStale();
  } catch {
    // best effort: a stale namespace does not stop this run (names differ per pid)
  }
  const tag = `kk${process.pid % 100000}`;
  writeFileSync(join(markers, tag), String(process.pid));
  const net = `10.${200 + (process.pid % 50)}.${Math.floor(Math.random() * 250)}`;
  const names: Record<string, string> = {};
  const addr: Record<string, string> = {};
  const created: string[] = [];
  const hub = `${tag}${roles[0]}`;
  try {
    roles.forEach((role, i) => {
      const ns = `${tag}${role}`;
      ip("netns", "add", ns);
      created.push(ns);
      ip("-n", ns, "link", "set", "lo", "up");
      names[role] = ns;
      addr[role] = `${net}.${i + 1}`;
    });
    ip("-n", hub, "link", "add", "br0", "type", "bridge");
    ip("-n", hub, "link", "set", "br0", "up");
    ip("-n", hub, "addr", "add", `${addr[roles[0]!]}/24`, "dev", "br0");
    const attach = (peerNs: string | undefined, i: number, address: string) => {
      const a = `${tag}h${i}`;
      const b = `${tag}p${i}`;
      ip("link", "add", a, "type", "veth", "peer", "name", b);
      ip("link", "set", a, "netns", hub);
      ip("-n", hub, "link", "set", a, "master", "br0");
      ip("-n", hub, "link", "set", a, "up");
      const on = peerNs ? ["-n", peerNs] : [];
      let dev = b;
      if (peerNs) {
        ip("link", "set", b, "netns", peerNs);
        ip(...on, "link", "set", b, "name", (dev = "eth0"));
      }
      ip(...on, "addr", "add", `${address}/24`, "dev", dev);
      ip(...on, "link", "set", dev, "up");
    };
    roles.slice(1).forEach((role, i) => attach(names[role], i + 1, addr[role]!));
    // The test process (a client) joins from the root namespace.
    addr.client = `${net}.254`;
    attach(undefined, 0, addr.client);
  } catch (e) {
    for (const ns of created) ipQuietly("netns", "del", ns);
    ipQuietly("link", "del", `${tag}p0`);
    rmSync(join(markers, tag), { force: true });
    throw e;
  }
  const children: ChildProcess[] = [];
  let destroyed = false;
  const onExit = () => n.destroy();
  const onSignal = (signal: NodeJS.Signals) => {
    n.destroy();
    process.kill(process.pid, signal);
  };
  process.once("exit", onExit);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const n: Netns = {
    names,
    addr,
    spawn(ns, command, args, env = {}) {
      const child = spawn("ip", ["netns", "exec", names[ns]!, command, ...args], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      return child;
    },
    link(ns, state) {
      ip("-n", names[ns]!, "link", "set", "eth0", state);
    },
    killAll(ns) {
      return killPids(names[ns]!);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      process.off("exit", onExit);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      for (const role of roles) killPids(names[role]!);
      for (const c of children) c.kill("SIGKILL");
      for (const ns of Object.values(names)) ipQuietly("netns", "del", ns);
      ipQuietly("link", "del", `${tag}p0`); // usually gone with the hub
      rmSync(join(markers, tag), { force: true });
    },
  };
  return n;
}

/** Lines a child wrote so far, and a wait for one matching a pattern. */
export function captured(child: ChildProcess): {
  text(): string;
  waitFor(re: RegExp, ms: number): Promise<RegExpExecArray>;
} {
  let text = "";
  child.stdout?.on("data", (c: Buffer) => (text += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (text += c.toString()));
  return {
    text: () => text,
    async waitFor(re, ms) {
      let m: RegExpExecArray | null = null;
      await waitFor(
        () => (m = re.exec(text)) !== null || child.exitCode !== null,
        ms,
        `output matching ${re}`,
      );
      if (!m)
        throw new Error(`process exited (${child.exitCode}) before printing ${re}:\n${text.slice(-3000)}`);
      return m;
    },
  };
}

/** A throwaway PostgreSQL server inside a namespace, listening on its address; returns its URL. */
export async function startPostgresIn(n: Netns, ns: string): Promise<string> {
  const bin = execFileSync("bash", ["-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1"], {
    encoding: "utf8",
  }).trim();
  if (!bin) throw new Error("PostgreSQL is not installed (scripts/setup installs Debian's postgresql)");
  const dir = tempDir("kk-netns-pg-");
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  const asPg = ["runuser", "-u", "postgres", "--"];
  execFileSync(
    asPg[0]!,
    [...asPg.slice(1), join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust"],
    {
      stdio: "ignore",
    },
  );
  appendFileSync(join(data, "pg_hba.conf"), "host all all 10.0.0.0/8 trust\n");
  const server = n.spawn(ns, asPg[0]!, [
    ...asPg.slice(1),
    join(bin, "postgres"),
    "-D",
    data,
    "-c",
    `listen_addresses=${n.addr[ns]}`,
    "-c",
    "port=5432",
    "-c",
    `unix_socket_directories=${dir}`,
    "-c",
    "max_connections=200",
  ]);
  const out = captured(server);
  await out.waitFor(/ready to accept connections/, 60_000);
  return `postgres://postgres@${n.addr[ns]}:5432/postgres`;
}

/** moto_server (an S3 server kikitori did not write) inside a namespace, on its address. */
export async function startMotoIn(n: Netns, ns: string): Promise<string> {
  const moto = n.spawn(ns, "moto_server", ["-H", n.addr[ns]!, "-p", "5000"]);
  await captured(moto).waitFor(/Running on/, 60_000);
  return `http://${n.addr[ns]}:5000`;
}

/** SigV4 credentials for the API processes: with them the front doors are not open (open mode is loopback only). */
export const CLUSTER_CREDENTIALS = { accessKeyId: "AKIDNETNSTEST", secretAccessKey: "netns-test-secret" };

/**
 * What every kikitori process of a test cluster shares: the database, S3 (moto), SigV4 credentials, and
 * the no-op model server allowed as a local image.
 */
export function clusterEnv(databaseUrl: string, s3Endpoint: string): Record<string, string> {
  return {
    KIKITORI_DATABASE_URL: databaseUrl,
    KIKITORI_S3_ENDPOINT: s3Endpoint,
    KIKITORI_S3_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
    KIKITORI_S3_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
    KIKITORI_ACCESS_KEY_ID: CLUSTER_CREDENTIALS.accessKeyId,
    KIKITORI_SECRET_ACCESS_KEY: CLUSTER_CREDENTIALS.secretAccessKey,
    KIKITORI_ALLOW_LOCAL_IMAGES: "1",
  };
}

/** An admin API key in the cluster's database (as `kikitori keys create` from any machine would make it). */
export async function adminKey(databaseUrl: string): Promise<string> {
  const b = await openBackends(loadConfig({ databaseUrl, dataDir: tempDir("kk-netns-keys-") }, {}));
  try {
    return (await createKey(b.keys, { name: "netns test admin", scope: "admin" })).token;
  } finally {
    await b.close();
  }
}

/** `kikitori <command> ...` inside a namespace; resolves once it listens. `api` sends `key` if given. */
export async function kikitoriIn(
  n: Netns,
  ns: string,
  args: string[],
  env: Record<string, string>,
  key?: string,
): Promise<{ child: ChildProcess; url: string; api: Api; log(): string }> {
  const dataDir = tempDir(`kk-netns-${ns}-`);
  const child = n.spawn(
    ns,
    process.execPath,
    [join(repoRoot, "bin", "kikitori.js"), ...args, "--host", n.addr[ns]!, "--data-dir", dataDir],
    env,
  );
  const out = captured(child);
  const url = (await out.waitFor(/listening on (http:\/\/\S+)/, 90_000))[1]!;
  return { child, url, api: new Api(url, key), log: out.text };
}
