import { randomUUID } from "node:crypto";
import { basename } from "node:path";
import type { Service } from "../core/service.js";
import type { Deployment, Endpoint, HostRecord, InstanceRecord, Model } from "../core/types.js";
import { coerceError } from "../errors.js";
import { planPlacements, type VariantWant } from "./placement.js";

export interface PlacerOptions {
  /** A pass every this often, and whenever a desired count, an endpoint or a host changes. @defaultValue 1000 */
  intervalMs: number;
  /** A host whose last heartbeat is older than this is lost: its instances are placed elsewhere. */
  hostTtlMs: number;
  log: (msg: string) => void;
}

/**
 * The leader's placement loop (a ClusterLoop): declares hosts whose heartbeat lapsed lost (their instance
 * records end), places each variant's desired instances on live hosts (planPlacements), removes the
 * placements of deleted, failed or shrunk variants, marks an endpoint InService once each variant has an
 * InService instance, and removes a deleted endpoint once its instances are gone. Hosts converge on their
 * placements (InstanceManager). Every write is guarded or idempotent, so two leaders for a moment do no harm.
 */
export class Placer {
  readonly name = "placer";
  private timer?: NodeJS.Timeout;
  private running = Promise.resolve();
  private pending = false;
  private stopped = true;
  private lastUnplaced = "";
  private readonly onChange = () => this.wake();

  constructor(
    private readonly service: Service,
    private readonly o: PlacerOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.service.on("cluster:desired", this.onChange);
    this.service.on("endpoint:changed", this.onChange);
    this.timer = setInterval(() => this.wake(), this.o.intervalMs);
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.service.off("cluster:desired", this.onChange);
    this.service.off("endpoint:changed", this.onChange);
    await this.running;
  }

  /** Coalesces triggers: at most one pass runs and one waits. */
  wake(): void {
    if (this.stopped || this.pending) return;
    this.pending = true;
    this.running = this.running.then(async () => {
      this.pending = false;
      await this.pass().catch((e: unknown) => this.o.log(`placer: ${coerceError(e).stack}`));
    });
  }

  /** One pass (tests may call it directly). */
  async pass(now = Date.now()): Promise<void> {
    const lapsedBefore = now - this.o.hostTtlMs;
    const hosts = await this.service.listHosts();
    for (const h of hosts) {
      if (h.state === "Gone" || h.heartbeatAt >= lapsedBefore) continue;
      if (await this.service.markHostGone(h.id, lapsedBefore)) {
        h.state = "Gone";
        this.o.log(`placer: host ${h.name} (${h.id}) lost: no heartbeat for ${now - h.heartbeatAt} ms`);
      }
    }
    const byId = new Map(hosts.map((h) => [h.id, h]));
    const live = hosts.filter((h) => h.state === "Ready" && h.heartbeatAt >= lapsedBefore);
    let instances = await this.service.listInstances({ live: true });
    // The records of a lost host's instances end here: that host can no longer say so itself.
    for (const i of instances) {
      const host = i.node ? byId.get(i.node) : undefined;
      if (host?.state !== "Gone") continue;
      await this.service.recordInstance({
        ...i,
        state: "Terminated",
        reason: `its host ${host.name} stopped heartbeating`,
        endedAt: now,
      });
    }
    instances = instances.filter((i) => byId.get(i.node ?? "")?.state !== "Gone");

    const endpoints = await this.service.listEndpoints();
    const wants: VariantWant[] = [];
    for (const e of endpoints) wants.push(...(await this.wantsOf(e)));
    const placements = await this.service.listPlacements({});
    const inService = new Set(instances.filter((i) => i.state === "InService").map((i) => i.placement));
    const plan = planPlacements(live, placements, wants, {
      now,
      newId: () => `p-${randomUUID().slice(0, 12)}`,
      inService: (p) => inService.has(p.id),
    });
    await this.service.applyPlacements(plan);
    for (const p of plan.add)
      this.o.log(`placer: ${p.endpoint}/${p.variant} instance placed on ${hostName(byId, p.host)}`);
    for (const p of plan.remove)
      this.o.log(`placer: ${p.endpoint}/${p.variant} instance removed from ${hostName(byId, p.host)}`);
    const unplaced = plan.unplaced.map((u) => `${u.endpoint}/${u.variant}: ${u.missing}`).join(", ");
    if (unplaced && unplaced !== this.lastUnplaced)
      this.o.log(`placer: no live host has room for ${unplaced} instance(s) (${live.length} live hosts)`);
    this.lastUnplaced = unplaced;

    for (const e of endpoints) await this.settle(e, instances);
  }

  /** The endpoint's deployments it runs: the current one, and an update's new one beside it (blue/green). */
  private deployments(e: Endpoint): Deployment[] {
    // Deleted, failed or copy-less endpoints run nothing: their instances stop everywhere.
    if (e.status === "Deleting" || e.status === "Failed" || !e.deployment) return [];
    return e.pending ? [e.deployment, e.pending] : [e.deployment];
  }

  private async wantsOf(e: Endpoint): Promise<VariantWant[]> {
    const out: VariantWant[] = [];
    for (const d of this.deployments(e)) {
      const desired = await this.service.desiredCounts(e, d);
      for (const v of d.config.variants) {
        const model = d.models.find((m) => m.name === v.modelName);
        out.push({
          endpoint: e.name,
          deployment: d.id,
          variant: v.variantName,
          desired: desired.get(v.variantName) ?? 0,
          model: modelKey(model),
          gpu: model?.environment.KIKITORI_GPU === "1",
        });
      }
    }
    return out;
  }

  /**
   * Status changes that follow from the instances: an update's new deployment is promoted once all of its
   * instances are InService (its old ones then drain); a new endpoint is InService once each variant has one;
   * a deleted endpoint is removed once its instances are gone.
   */
  private async settle(e: Endpoint, instances: InstanceRecord[]) {
    const mine = instances.filter((i) => i.endpoint === e.name);
    if (e.status === "Deleting") {
      if (!mine.length) await this.service.removeDeletedEndpoint(e.name);
      return;
    }
    const ready = async (d: Deployment, all: boolean) => {
      const desired = await this.service.desiredCounts(e, d);
      return d.config.variants.every((v) => {
        const want = desired.get(v.variantName) ?? 0;
        const up = mine.filter(
          (i) =>
            (i.deployment ?? e.deployment?.id) === d.id &&
            i.variant === v.variantName &&
            i.state === "InService",
        ).length;
        return up >= (all ? want : Math.min(want, 1));
      });
    };
    if (e.status !== "Updating" && e.status !== "Creating") return;
    if (e.pending) {
      if (await ready(e.pending, true)) await this.service.promoteDeployment(e.name, e.pending.id);
    } else if (e.deployment && (await ready(e.deployment, false))) {
      await this.service.setEndpointStatus(e.name, "InService");
    }
  }
}

/** What a host reports having cached for a model: its ModelDataUrl, or its local ggml file's name. */
export function modelKey(model: Model | undefined): string | undefined {
  if (!model) return undefined;
  if (model.modelDataUrl) return model.modelDataUrl;
  const file = model.environment.KIKITORI_MODEL_FILE;
  return file ? basename(file) : undefined;
}

const hostName = (byId: Map<string, HostRecord>, id: string) => byId.get(id)?.name ?? id;
