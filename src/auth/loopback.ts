import { BlockList, isIP } from "node:net";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** Whether an IP address is a loopback address (127.0.0.0/8, ::1, and their IPv4-mapped forms). */
export function isLoopbackAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, "").toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return LOOPBACK.check(mapped[1]!, "ipv4");
  const family = isIP(a);
  if (family === 4) return LOOPBACK.check(a, "ipv4");
  if (family === 6) return LOOPBACK.check(a, "ipv6");
  return false;
}

/**
 * Whether a host name or address is loopback by definition: an address in the loopback ranges, or
 * `localhost` / `*.localhost` (RFC 6761: always resolve to loopback). `127.evil.example` is not.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  return isLoopbackAddress(h);
}

/** The host name of a `Host` header value (`name:port`, `[v6]:port`), or undefined when malformed. */
export function hostOfHeader(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/@]+)(?::(\d{1,5}))?$/.exec(value.trim());
  return m?.[1]?.replace(/^\[|\]$/g, "");
}
