import { BlockList, isIP } from "node:net";
import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";

/**
 * Where kikitori may send notifications. Link-local and cloud metadata addresses are never allowed;
 * loopback and private ranges only when configured (a webhook is a request the service makes on a
 * user's behalf, so by default it must not reach anything a user could not reach from outside).
 */
export interface EgressPolicy {
  allowLoopback: boolean;
  allowPrivate: boolean;
  /** Host names allowed even when they resolve to loopback or private addresses (never metadata). */
  allowHosts: readonly string[];
  /** Host names always refused (exact, or `.suffix`). */
  denyHosts: readonly string[];
}

export class EgressRefused extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`refused to send to ${url}: ${reason}`);
    this.name = "EgressRefused";
  }
}

const blocks = (v4: string[], v6: string[]) => {
  const b = new BlockList();
  const add = (cidr: string, type: "ipv4" | "ipv6") => {
    const [net = "", bits = ""] = cidr.split("/");
    b.addSubnet(net, Number(bits), type);
  };
  v4.forEach((c) => add(c, "ipv4"));
  v6.forEach((c) => add(c, "ipv6"));
  return b;
};

const NEVER: [string, BlockList][] = [
  [
    "a link-local address (169.254.0.0/16, fe80::/10: cloud metadata lives here)",
    blocks(["169.254.0.0/16"], ["fe80::/10"]),
  ],
  ["a cloud metadata address", blocks(["100.100.100.200/32", "192.0.0.192/32"], ["fd00:ec2::254/128"])],
  [
    "an unspecified or reserved address",
    blocks(
      [
        "0.0.0.0/8",
        "240.0.0.0/4",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
      ],
      ["::/128", "100::/64", "2001:db8::/32"],
    ),
  ],
  ["a multicast address", blocks(["224.0.0.0/4"], ["ff00::/8"])],
];
const LOOPBACK = blocks(["127.0.0.0/8"], ["::1/128"]);
const PRIVATE = blocks(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"], ["fc00::/7"]);
const METADATA_HOSTS = ["metadata.google.internal", "metadata", "metadata.azure.internal", "instance-data"];

/** The eight 16-bit groups of an IPv6 address (any spelling: `::`, a dotted IPv4 tail), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  if (isIP(address) !== 6) return undefined;
  let a = address.toLowerCase().replace(/%.*$/, "");
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number];
    a = a.slice(0, v4.index) + `${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head = "", tail] = a.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((g) => parseInt(g, 16));
  return groups.length === 8 ? groups : undefined;
}

const v4of = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address an IPv6 address carries, where the network would deliver it to that IPv4 host:
 * IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and
 * 6to4 (`2002:AABB:CCDD::/16`). A target must not reach through these what it may not reach directly.
 */
function embeddedIPv4(g: number[]): string | undefined {
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && (g[5] === 0xffff || g[5] === 0) && !(g[5] === 0 && g[6] === 0)) return v4of(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4of(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4of(g[1]!, g[2]!);
  return undefined;
}

/** The address as the network treats it: an IPv6 form that embeds an IPv4 address is checked as that. */
function normalize(address: string): { address: string; family: "ipv4" | "ipv6" } {
  const groups = ipv6Groups(address);
  if (!groups) return { address, family: "ipv4" };
  const v4 = embeddedIPv4(groups);
  return v4 ? { address: v4, family: "ipv4" } : { address, family: "ipv6" };
}

/** Why this resolved address may not be used, or undefined when it may. */
export function addressRefusal(
  address: string,
  policy: EgressPolicy,
  hostAllowed = false,
): string | undefined {
  const a = normalize(address);
  for (const [why, list] of NEVER) if (list.check(a.address, a.family)) return `${address} is ${why}`;
  if (LOOPBACK.check(a.address, a.family) && !policy.allowLoopback && !hostAllowed)
    return `${address} is a loopback address (allowed only with webhook egress allowLoopback)`;
  if (PRIVATE.check(a.address, a.family) && !policy.allowPrivate && !hostAllowed)
    return `${address} is a private address (allowed only with webhook egress allowPrivate)`;
  return undefined;
}

const matches = (host: string, pattern: string) =>
  pattern.startsWith(".") ? host.endsWith(pattern) || host === pattern.slice(1) : host === pattern;

/** A target that passed the policy, with the address to connect to (never resolved again: no DNS rebinding). */
export interface CheckedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** Parses and checks a URL, resolves its host, and checks every resolved address. */
export async function checkTarget(raw: string, policy: EgressPolicy): Promise<CheckedTarget> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new EgressRefused(raw, "not an absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new EgressRefused(raw, `scheme ${url.protocol} is not http or https`);
  if (url.username || url.password) throw new EgressRefused(raw, "credentials in the URL are not allowed");
  const host = url.hostname
    .replace(/^\[|\]$/g, "")
    .toLowerCase()
    .replace(/\.$/, "");
  if (METADATA_HOSTS.includes(host)) throw new EgressRefused(raw, `${host} is a cloud metadata host`);
  if (policy.denyHosts.some((p) => matches(host, p.toLowerCase())))
    throw new EgressRefused(raw, `${host} is on the deny list`);
  const hostAllowed = policy.allowHosts.some((p) => matches(host, p.toLowerCase()));
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (e) {
      throw new EgressRefused(raw, `cannot resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  }
  const first = addresses[0];
  if (!first) throw new EgressRefused(raw, `${host} resolves to no address`);
  // Every address must pass: a name that resolves to one public and one internal address is refused.
  for (const a of addresses) {
    const why = addressRefusal(a.address, policy, hostAllowed);
    if (why) throw new EgressRefused(raw, host === a.address ? why : `${host} resolves to ${why}`);
  }
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}

export interface PostResult {
  /** Absent when no response came (refused, timeout, connection error). */
  status?: number;
  ok: boolean;
  /** Why it did not count as delivered. */
  error?: string;
  /** The policy refused the target: retrying will not help. */
  refused?: boolean;
  body: string;
}

/**
 * POSTs to a checked target, connecting to the checked address. Redirects are never followed (a 3xx is a
 * failure that says where it pointed); the response body is read up to `maxResponseBytes`.
 */
export async function postChecked(
  raw: string,
  policy: EgressPolicy,
  body: string,
  headers: Record<string, string>,
  o: { timeoutMs: number; maxResponseBytes: number },
): Promise<PostResult> {
  let target: CheckedTarget;
  try {
    target = await checkTarget(raw, policy);
  } catch (e) {
    if (e instanceof EgressRefused) return { ok: false, refused: true, error: e.message, body: "" };
    throw e;
  }
  const { url, address, family } = target;
  const mod = url.protocol === "https:" ? https : http;
  return new Promise<PostResult>((resolve) => {
    let settled = false;
    const done = (r: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = mod.request(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
          "user-agent": "kikitori-webhooks/0.1",
          ...headers,
        },
        // Pin the connection to the address that passed the check.
        lookup: ((_h: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
          opts?.all ? cb(null, [{ address, family }]) : cb(null, address, family)) as never,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const status = res.statusCode ?? 0;
        const finish = () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (status >= 300 && status < 400) {
            const loc = res.headers.location;
            done({
              status,
              ok: false,
              error: `redirect not followed: ${status}${loc ? ` to ${loc}` : ""} (redirects are never followed)`,
              body: text,
            });
          } else if (status >= 200 && status < 300) done({ status, ok: true, body: text });
          else done({ status, ok: false, error: `receiver answered ${status}`, body: text });
        };
        res.on("data", (c: Buffer) => {
          if (size >= o.maxResponseBytes) return;
          chunks.push(c.subarray(0, o.maxResponseBytes - size));
          size += c.length;
          // Past the cap the rest is not read: a receiver cannot make us buffer an unbounded body.
          if (size >= o.maxResponseBytes) {
            finish();
            res.destroy();
          }
        });
        res.on("end", finish);
        res.on("error", (e) =>
          done({ status, ok: false, error: `reading the response: ${e.message}`, body: "" }),
        );
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done({ ok: false, error: `no response within ${o.timeoutMs} ms`, body: "" });
    }, o.timeoutMs);
    req.on("error", (e: NodeJS.ErrnoException) =>
      done({ ok: false, error: `connection failed: ${e.code ?? e.message}`, body: "" }),
    );
    req.end(body);
  });
}
