import type { Service } from "../core/service.js";
import type { Deployment, Endpoint, Invocation, Placement } from "../core/types.js";
import { containerName, detectContainerRuntime, removeContainer } from "./container.js";
import { resolveImage, type LocalImagePolicy } from "./images.js";
import { Instance } from "./instance.js";
import type { ModelDataCache } from "./model-data.js";
import { freePort } from "./model-server.js";
import { hostname } from "node:os";
import { THIS_NODE, nodeGone, startedNear } from "./node.js";

export interface ManagerOptions {
  leaseMs: number;
  heartbeatMs: number;
  startupHealthTimeoutMs: number;
  shutdownGraceMs: number;
  /** Periodic GET /ping of InService instances (see InstanceOptions). @defaultValue 5000 */
  healthCheckIntervalMs?: number;
  /** Consecutive failed starts of one variant before the endpoint is marked Failed. */
  maxConsecutiveStartFailures: number;
  /** Model file used by built-in models that have no ModelDataUrl. */
  defaultModelFile: () => string;
  /** Which `local:` images may run (images.ts); none when absent. */
  localImages?: LocalImagePolicy;
  /** This host (HostRecord.id): the manager runs the placements assigned to it. */
  hostId: string;
  /** This host's relay base URL, when other hosts may send synchronous invocations through it. */
  relay?: () => string | undefined;
  log: (msg: string) => void;
}

/** Start failures of one variant of one deployment on this host: backoff, then Failed (or an update rolled back). */
interface Failures {
  consecutive: number;
  nextStartAt: number;
}

const key = (p: Pick<Placement, "endpoint" | "deployment" | "variant">) =>
  `${p.endpoint}\0${p.deployment}\0${p.variant}`;

/**
 * The worker side of placement: runs one instance for each placement the leader assigned to this host
 * (`hostId`), replaces one that crashes (with backoff), drains one whose placement was removed, and wakes
 * runners when work arrives. What runs where is decided only by the leader (src/cluster/placer.ts).
 */
export class InstanceManager {
  /** This host's instances by placement id. */
  private readonly instances = new Map<string, Instance>();
  private readonly starting = new Set<string>();
  private readonly failures = new Map<string, Failures>();
  private timer?: NodeJS.Timeout;
  private reconciling = Promise.resolve();
  private pendingReconcile = false;
  private stopped = false;
  private readonly retiring = new Set<Promise<void>>();

  constructor(
    private readonly service: Service,
    private readonly modelData: ModelDataCache,
    private readonly o: ManagerOptions,
  ) {}

  async start(): Promise<void> {
    await this.reapOrphans();
    this.service.on("invocation:queued", (inv) => this.wake(inv.endpoint));
    // Every idle instance of the endpoint may take some of a file's chunks.
    this.service.on("chunks:queued", (endpoint) => {
      for (const i of this.instancesOf(endpoint)) i.wake();
    });
    this.service.on("invocation:cancel", (inv) => this.abort(inv));
    this.service.on("cluster:placement", (hosts) => {
      if (hosts.includes(this.o.hostId)) this.schedule();
    });
    this.schedule();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  /** Placements of this host changed (a wake-up from another process). */
  placementsChanged(): void {
    this.schedule();
  }

  /**
   * Instances left by a previous run of this service (killed with -9): stop them, mark them ended, and put
   * their running work back in the queue at once instead of waiting for the leases to lapse.
   */
  private async reapOrphans(): Promise<void> {
    // Only this host's instances: other hosts sharing the database keep theirs.
    const orphans = (await this.service.listInstances({ live: true })).filter(
      (r) => r.host === hostname() && r.node !== THIS_NODE && nodeGone(r.node),
    );
    if (!orphans.length) return;
    // A container outlives its runtime's client: remove it by name (a container image's instances only).
    const runtime = detectContainerRuntime().runtime;
    for (const rec of orphans) {
      if (runtime) await removeContainer(runtime, containerName(rec.id));
      if (rec.pid && startedNear(rec.pid, rec.startedAt)) {
        try {
          process.kill(rec.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await this.service.recordInstance({
        ...rec,
        state: "Terminated",
        reason: "service restarted",
        endedAt: Date.now(),
      });
    }
    const owners = new Set(orphans.map((r) => r.id));
    for (const inv of await this.service.listInvocations({ state: "Running", limit: 1000 })) {
      if (inv.leaseOwner && owners.has(inv.leaseOwner)) {
        await this.service.giveBack(inv, inv.leaseOwner, {
          code: "ModelServerUnavailable",
          message: "the service running it restarted",
        });
      }
    }
  }

  private tick(): void {
    this.schedule();
    // A safety net for missed wake-ups.
    for (const i of this.instances.values()) i.wake();
  }

  /** Leases work for the endpoint's instance that has a free slot (work arrived, here or on another host). */
  wake(endpoint: string): void {
    for (const i of this.instances.values()) {
      if (i.o.endpoint === endpoint && i.freeSlots > 0) {
        i.wake();
        return;
      }
    }
  }

  private abort(inv: Invocation): void {
    for (const i of this.instances.values()) i.abort(inv.id, "cancel");
  }

  /** How many instances run here. */
  get count(): number {
    return this.instances.size;
  }

  /** This host's instance with that id, if it runs here. */
  find(instanceId: string): Instance | undefined {
    return [...this.instances.values()].find((i) => i.id === instanceId);
  }

  /** This host's instances of the endpoint. */
  instancesOf(endpoint: string): Instance[] {
    return [...this.instances.values()].filter((i) => i.o.endpoint === endpoint);
  }

  /** Coalesces triggers: at most one reconciliation runs and one waits. */
  private schedule(): void {
    if (this.stopped || this.pendingReconcile) return;
    this.pendingReconcile = true;
    this.reconciling = this.reconciling
      .then(() => {
        this.pendingReconcile = false;
        return this.reconcile();
      })
      .catch((e: unknown) => this.o.log(`reconcile failed: ${(e as Error).stack}`));
  }

  /** Converges on this host's placements: starts the missing instances, drains the unwanted ones. */
  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const placements = await this.service.listPlacements({ host: this.o.hostId });
    const wanted = new Set(placements.map((p) => p.id));
    for (const [id, i] of this.instances) {
      if (i.state === "Terminated" || i.state === "Failed") this.instances.delete(id);
      else if (!wanted.has(id)) {
        this.instances.delete(id);
        this.retire([i]);
      }
    }
    const now = Date.now();
    for (const p of placements) {
      if (this.instances.has(p.id) || this.starting.has(p.id)) continue;
      if (now < (this.failures.get(key(p))?.nextStartAt ?? 0)) continue;
      void this.startInstance(p);
    }
  }

  /** Drains instances that left the variant; stop() waits for them, so none outlives the store. */
  private retire(instances: Instance[]): void {
    const p = Promise.all(instances.map((i) => i.drain())).then(
      () => {},
      (e: unknown) => this.o.log(`drain failed: ${(e as Error).message}`),
    );
    this.retiring.add(p);
    void p.finally(() => this.retiring.delete(p));
  }

  private async startInstance(p: Placement): Promise<void> {
    this.starting.add(p.id);
    try {
      // The endpoint's own copy of its config and models: the deployment the placement is for.
      const endpoint = await this.service.findEndpoint(p.endpoint);
      const d = [endpoint?.deployment, endpoint?.pending].find((x) => x?.id === p.deployment);
      const variant = d?.config.variants.find((x) => x.variantName === p.variant);
      if (!endpoint || !d || !variant) return; // gone meanwhile: the leader removes the placement
      try {
        const model = d.models.find((m) => m.name === variant.modelName);
        if (!model)
          throw new Error(`model ${variant.modelName} is missing from the endpoint's copy of its config`);
        const image = resolveImage(model.image, undefined, this.o.localImages);
        const modelDir = model.modelDataUrl
          ? await this.modelData.resolve(model.modelDataUrl, { builtin: image.kind === "builtin" })
          : image.kind === "builtin"
            ? await this.modelData.forLocalFile(
                model.environment.KIKITORI_MODEL_FILE ?? this.o.defaultModelFile(),
              )
            : await this.modelData.empty();
        const instance = new Instance(this.service, {
          endpoint: endpoint.name,
          variant: p.variant,
          deployment: d.id,
          placement: p.id,
          relay: this.o.relay?.(),
          image,
          modelDir,
          environment: model.environment,
          port: await freePort(),
          maxConcurrency: d.config.asyncConfig?.maxConcurrentInvocationsPerInstance ?? 1,
          leaseMs: this.o.leaseMs,
          heartbeatMs: this.o.heartbeatMs,
          startupHealthTimeoutMs: this.o.startupHealthTimeoutMs,
          shutdownGraceMs: this.o.shutdownGraceMs,
          healthCheckIntervalMs: this.o.healthCheckIntervalMs,
          log: this.o.log,
        });
        instance.onExit = () => this.schedule();
        this.instances.set(p.id, instance);
        if (await instance.start()) {
          this.failures.delete(key(p));
          instance.wake();
        } else {
          await this.startFailed(endpoint, d, p.variant, instance.reason ?? "failed to start");
        }
      } catch (e) {
        await this.startFailed(endpoint, d, p.variant, (e as Error).message);
      }
    } finally {
      this.starting.delete(p.id);
      this.schedule();
    }
  }

  private async startFailed(
    endpoint: Endpoint,
    d: Deployment,
    variant: string,
    reason: string,
  ): Promise<void> {
    const k = key({ endpoint: endpoint.name, deployment: d.id, variant });
    const f = this.failures.get(k) ?? { consecutive: 0, nextStartAt: 0 };
    f.consecutive++;
    f.nextStartAt = Date.now() + Math.min(30_000, 500 * 2 ** f.consecutive);
    this.failures.set(k, f);
    this.o.log(
      `endpoint ${endpoint.name}/${variant}: instance failed to start (${f.consecutive}): ${reason}`,
    );
    if (f.consecutive < this.o.maxConsecutiveStartFailures) return;
    const why = `variant ${variant}: ${f.consecutive} instance starts failed in a row; last: ${reason}`;
    // An update whose new model cannot start is rolled back: the old instances never stopped serving.
    if (d.id === endpoint.pending?.id) {
      await this.service.rollBackDeployment(endpoint.name, d.id, why);
      return;
    }
    // A crash-looping model shows as a Failed endpoint with the reason, and its queue is failed, not kept forever.
    await this.service.setEndpointStatus(endpoint.name, "Failed", why);
    await this.service.failQueued(endpoint.name, {
      code: "ModelServerUnavailable",
      message: `endpoint ${endpoint.name} failed: ${why}`,
    });
  }

  /** Stops every instance, letting in-flight work finish for `drainMs` (default: at most 2 s). */
  async stop(drainMs = Math.min(this.o.shutdownGraceMs, 2000)): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.reconciling;
    const all = [...this.instances.values()];
    await Promise.all([...all.map((i) => i.drain(drainMs)), ...this.retiring]);
  }
}
