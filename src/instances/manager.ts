import type { Service } from "../core/service.js";
import type { Deployment, Endpoint, Invocation } from "../core/types.js";
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
  log: (msg: string) => void;
}

/** The instances of one variant of one deployment (an update runs two deployments for a while). */
interface VariantState {
  instances: Instance[];
  /** Wanted instance count: InitialInstanceCount, or the autoscaler's for the current deployment. */
  desired: number;
  consecutiveFailures: number;
  nextStartAt: number;
  starting: number;
}

const key = (endpoint: string, deployment: string, variant: string) =>
  `${endpoint}\0${deployment}\0${variant}`;
const parseKey = (k: string) => k.split("\0") as [endpoint: string, deployment: string, variant: string];
const scaledKey = (endpoint: string, variant: string) => `${endpoint}\0${variant}`;

/**
 * Keeps each endpoint variant at its desired instance count on this host: starts, replaces crashed
 * ones (with backoff), drains extras, and wakes runners when work arrives.
 */
export class InstanceManager {
  private readonly variants = new Map<string, VariantState>();
  /** The autoscaler's instance counts (`scaledKey`), for the variants of each endpoint's current deployment. */
  private readonly scaled = new Map<string, number>();
  /** Each endpoint's current deployment id, as last reconciled. */
  private readonly current = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private reconciling = Promise.resolve();
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
    this.service.on("invocation:cancel", (inv) => this.abort(inv));
    this.service.on("endpoint:changed", () => this.schedule());
    this.schedule();
    this.timer = setInterval(() => this.tick(), 1000);
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
    // A safety net for missed wake-ups (and the only signal for work enqueued by other hosts).
    for (const v of this.variants.values()) for (const i of v.instances) i.wake();
  }

  /** Leases work for the endpoint's instance that has a free slot (work arrived, here or on another host). */
  wake(endpoint: string): void {
    for (const [k, v] of this.variants) {
      if (!k.startsWith(endpoint + "\0")) continue;
      for (const i of v.instances) {
        if (i.freeSlots > 0) {
          i.wake();
          return;
        }
      }
    }
  }

  private abort(inv: Invocation): void {
    for (const v of this.variants.values()) for (const i of v.instances) i.abort(inv.id, "cancel");
  }

  /** Sets the wanted instance count of a variant of the endpoint's current deployment (the autoscaler). */
  setDesired(endpoint: string, variant: string, desired: number): void {
    // Kept apart from the variant's state: a new endpoint may be scaled before its first reconciliation.
    this.scaled.set(scaledKey(endpoint, variant), desired);
    const v = this.variants.get(key(endpoint, this.current.get(endpoint) ?? "", variant));
    if (v) v.desired = desired;
    this.schedule();
  }

  /**
   * Live instances per variant of one of the endpoint's deployments (by default its current one), for
   * metrics, the autoscaler and DescribeEndpoint.
   */
  counts(
    endpoint: string,
    deployment = this.current.get(endpoint),
  ): Map<string, { current: number; desired: number; inService: number; busy: number }> {
    const out = new Map<string, { current: number; desired: number; inService: number; busy: number }>();
    for (const [k, v] of this.variants) {
      const [ep, id, variant] = parseKey(k);
      if (ep !== endpoint || id !== deployment) continue;
      out.set(variant, {
        current: v.instances.length,
        desired: v.desired,
        inService: v.instances.filter((i) => i.state === "InService").length,
        busy: v.instances.reduce((n, i) => n + i.inFlight, 0),
      });
    }
    return out;
  }

  /** The endpoint's instances, of every deployment. */
  instancesOf(endpoint: string): Instance[] {
    const out: Instance[] = [];
    for (const [k, v] of this.variants) if (k.startsWith(endpoint + "\0")) out.push(...v.instances);
    return out;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.reconciling = this.reconciling
      .then(() => this.reconcileAll())
      .catch((e: unknown) => this.o.log(`reconcile failed: ${(e as Error).stack}`));
  }

  private async reconcileAll(): Promise<void> {
    for (const endpoint of await this.service.listEndpoints()) await this.reconcile(endpoint);
  }

  private async reconcile(endpoint: Endpoint): Promise<void> {
    const { deployment, pending } = endpoint;
    if (endpoint.status === "Deleting" || !deployment) {
      await Promise.all(this.instancesOf(endpoint.name).map((i) => i.drain()));
      this.forget(endpoint.name);
      if (endpoint.status === "Deleting") await this.service.removeDeletedEndpoint(endpoint.name);
      return;
    }
    // Deployments replaced by an update (or a rolled-back update's) and variants that left one are drained.
    const wanted = pending ? [deployment, pending] : [deployment];
    for (const [k, v] of this.variants) {
      const [ep, id, variant] = parseKey(k);
      if (ep !== endpoint.name) continue;
      const d = wanted.find((w) => w.id === id);
      if (!d?.config.variants.some((cv) => cv.variantName === variant)) {
        this.variants.delete(k);
        this.retire(v.instances);
      }
    }
    if (this.current.get(endpoint.name) !== deployment.id) {
      // A new deployment starts from its config's counts; the autoscaler adjusts them from there.
      if (this.current.has(endpoint.name)) this.forgetScaled(endpoint.name);
      this.current.set(endpoint.name, deployment.id);
    }
    if (endpoint.status === "Failed") return;
    const ready = this.converge(endpoint, deployment, "one");
    if (pending) {
      // Blue/green: the old instances keep serving until every new one is InService.
      if (this.converge(endpoint, pending, "all"))
        await this.service.promoteDeployment(endpoint.name, pending.id);
    } else if (ready && (endpoint.status === "Creating" || endpoint.status === "Updating")) {
      await this.service.setEndpointStatus(endpoint.name, "InService");
    }
  }

  /**
   * Starts or stops instances of the deployment's variants towards their wanted counts; true when ready:
   * each variant has one instance InService (`one`, enough to serve), or all of its wanted ones (`all`).
   */
  private converge(endpoint: Endpoint, d: Deployment, ready: "one" | "all"): boolean {
    const isCurrent = d.id === endpoint.deployment?.id;
    let ok = true;
    for (const variant of d.config.variants) {
      const k = key(endpoint.name, d.id, variant.variantName);
      let v = this.variants.get(k);
      if (!v) {
        v = { instances: [], desired: 0, consecutiveFailures: 0, nextStartAt: 0, starting: 0 };
        this.variants.set(k, v);
      }
      v.desired =
        (isCurrent ? this.scaled.get(scaledKey(endpoint.name, variant.variantName)) : undefined) ??
        variant.initialInstanceCount;
      v.instances = v.instances.filter((i) => i.state !== "Terminated" && i.state !== "Failed");
      const live = v.instances.length;
      if (live < v.desired && v.starting === 0 && Date.now() >= v.nextStartAt) {
        for (let n = live; n < v.desired; n++) void this.startInstance(endpoint, d, variant.variantName, v);
      } else if (live > v.desired) {
        const extra = [...v.instances].sort((a, b) => a.inFlight - b.inFlight).slice(0, live - v.desired);
        v.instances = v.instances.filter((i) => !extra.includes(i));
        this.retire(extra);
      }
      const inService = v.instances.filter((i) => i.state === "InService").length;
      if (inService < (ready === "all" ? v.desired : Math.min(v.desired, 1))) ok = false;
    }
    return ok;
  }

  /** Drops what the manager keeps about an endpoint (deleted, or nothing to run). */
  private forget(endpoint: string): void {
    for (const k of [...this.variants.keys()]) if (k.startsWith(endpoint + "\0")) this.variants.delete(k);
    this.forgetScaled(endpoint);
    this.current.delete(endpoint);
  }

  private forgetScaled(endpoint: string): void {
    for (const k of [...this.scaled.keys()]) if (k.startsWith(endpoint + "\0")) this.scaled.delete(k);
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

  private async startInstance(endpoint: Endpoint, d: Deployment, variantName: string, v: VariantState) {
    v.starting++;
    const variant = d.config.variants.find((x) => x.variantName === variantName)!;
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
        variant: variantName,
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
      v.instances.push(instance);
      if (await instance.start()) {
        v.consecutiveFailures = 0;
        instance.wake();
      } else {
        await this.startFailed(endpoint, d, variantName, v, instance.reason ?? "failed to start");
      }
    } catch (e) {
      await this.startFailed(endpoint, d, variantName, v, (e as Error).message);
    } finally {
      v.starting--;
      this.schedule();
    }
  }

  private async startFailed(
    endpoint: Endpoint,
    d: Deployment,
    variant: string,
    v: VariantState,
    reason: string,
  ): Promise<void> {
    v.consecutiveFailures++;
    v.nextStartAt = Date.now() + Math.min(30_000, 500 * 2 ** v.consecutiveFailures);
    this.o.log(
      `endpoint ${endpoint.name}/${variant}: instance failed to start (${v.consecutiveFailures}): ${reason}`,
    );
    if (v.consecutiveFailures < this.o.maxConsecutiveStartFailures) return;
    const why = `variant ${variant}: ${v.consecutiveFailures} instance starts failed in a row; last: ${reason}`;
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

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.reconciling;
    const all = [...this.variants.values()].flatMap((v) => v.instances);
    await Promise.all([...all.map((i) => i.drain(Math.min(this.o.shutdownGraceMs, 2000))), ...this.retiring]);
  }
}
