import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { availableParallelism, hostname } from "node:os";
import type { Service } from "../core/service.js";
import type { HostRecord } from "../core/types.js";
import { coerceError } from "../errors.js";
import { THIS_NODE } from "../instances/node.js";

export interface HostOptions {
  /** Instances this host runs at most (`KIKITORI_INSTANCE_SLOTS`). */
  slots: number;
  gpus: number;
  /** Heartbeat period; the leader declares a host lost after `KIKITORI_HOST_TTL_MS` without one. */
  heartbeatMs: number;
  /** Model data this host has cached (ModelDataUrl values, ggml file names), read at each heartbeat. */
  models: () => Promise<string[]>;
  /** The one variant this host runs (`<endpoint>/<variant>`), if dedicated. */
  serves?: string;
  log: (msg: string) => void;
}

/**
 * This process as a worker host of the cluster: registers its capacity in the store, heartbeats, and says
 * when it drains (scale-in) and leaves. The leader places instances on it (Placer); InstanceManager runs them.
 */
export class HostHeartbeat {
  readonly id = THIS_NODE;
  /** The bearer token this host's relay accepts; other processes read it from the store. */
  readonly token = randomBytes(24).toString("base64url");
  /** The base URL other processes reach this host's relay at (a worker-only process listens for them). */
  address?: string;
  private readonly startedAt = Date.now();
  private state: HostRecord["state"] = "Ready";
  private timer?: NodeJS.Timeout;
  private beating = Promise.resolve();
  private failing = false;

  constructor(
    private readonly service: Service,
    private readonly o: HostOptions,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.beating = this.beating.then(() => this.beat());
    }, this.o.heartbeatMs);
  }

  /** Takes no new instances from now on (the leader moves them); used before a graceful stop. */
  async drain(): Promise<void> {
    this.state = "Draining";
    this.beating = this.beating.then(() => this.beat());
    await this.beating;
  }

  /** Leaves the cluster: the leader re-places what was left here at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    this.state = "Gone";
    await this.beat();
  }

  private async beat(): Promise<void> {
    try {
      await this.service.upsertHost({
        id: this.id,
        name: hostname(),
        address: this.address,
        token: this.token,
        slots: this.o.slots,
        cpus: availableParallelism(),
        gpus: this.o.gpus,
        models: await this.o.models(),
        serves: this.o.serves,
        state: this.state,
        startedAt: this.startedAt,
        heartbeatAt: Date.now(),
      });
      if (this.failing) this.o.log("host: heartbeat recorded again");
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.o.log(`host: heartbeat failed: ${coerceError(e).message}`);
      this.failing = true;
    }
  }
}

/** The ggml model files in the models directory (`ggml-tiny.en.bin`, ...). */
export async function ggmlFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => /^ggml-.*\.bin$/.test(n));
}
