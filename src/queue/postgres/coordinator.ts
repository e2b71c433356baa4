import pg from "pg";
import type { Coordinator, WakeTopic } from "../types.js";
import { CHANNEL } from "./store.js";

// The advisory lock whose holder leads; any constant the processes of one database agree on.
const LEADER_LOCK = 7_600_000;
const TOPIC_OF = Object.fromEntries(Object.entries(CHANNEL).map(([t, c]) => [c, t as WakeTopic]));

/**
 * Leadership and wake-ups on one dedicated connection (outside the pool): the leader is the session that
 * holds a session-level advisory lock, so PostgreSQL itself releases it when that session ends (process
 * killed, connection lost) and the next `tryLead` of another process takes it. The same session LISTENs for
 * the wake-ups the stores NOTIFY.
 */
export class PgCoordinator implements Coordinator {
  private client?: pg.Client;
  private connecting?: Promise<pg.Client>;
  private leading = false;
  private closed = false;
  private readonly handlers = new Map<WakeTopic, ((payload: string) => void)[]>();

  /** @param config The pool's connection settings; `queryTimeoutMs` bounds a check on a dead network. */
  constructor(private readonly config: pg.ClientConfig & { queryTimeoutMs: number }) {}

  /** The session, (re)connected and listening; a new session has no leadership until tryLead takes it. */
  connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const c = new pg.Client({ ...this.config, query_timeout: this.config.queryTimeoutMs });
      const lost = () => {
        if (this.client === c) this.client = undefined;
        this.leading = false;
      };
      c.on("error", lost);
      c.on("end", lost);
      c.on("notification", (n) => {
        const topic = TOPIC_OF[n.channel];
        if (topic) for (const fn of this.handlers.get(topic) ?? []) fn(n.payload ?? "");
      });
      try {
        await c.connect();
        for (const channel of Object.values(CHANNEL)) await c.query(`LISTEN ${channel}`);
      } catch (e) {
        await c.end().catch(() => {});
        throw e;
      }
      this.leading = false;
      this.client = c;
      return c;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  async tryLead(): Promise<boolean> {
    if (this.closed) return false;
    const c = await this.connect();
    if (this.leading) {
      // The lock lives as long as the session: a session that still answers still holds it.
      await c.query("SELECT 1");
      return this.leading;
    }
    const r = await c.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [LEADER_LOCK]);
    this.leading = r.rows[0]?.ok === true;
    return this.leading;
  }

  async resign(): Promise<void> {
    if (!this.leading || !this.client) return;
    this.leading = false;
    await this.client.query("SELECT pg_advisory_unlock($1)", [LEADER_LOCK]);
  }

  onWake(topic: WakeTopic, fn: (payload: string) => void): void {
    this.handlers.set(topic, [...(this.handlers.get(topic) ?? []), fn]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.leading = false;
    const c = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
