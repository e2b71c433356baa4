import type { HostRecord, Placement } from "../core/types.js";

/** What one variant of one of an endpoint's deployments asks of the cluster. */
export interface VariantWant {
  endpoint: string;
  /** The endpoint's current deployment, or an update's new one (its instances start beside the old). */
  deployment: string;
  variant: string;
  desired: number;
  /** The model data it runs (ModelDataUrl or ggml file name): hosts that have it cached come first. */
  model?: string;
  /** Only hosts with a GPU may run it. */
  gpu: boolean;
}

export interface PlacementPlan {
  add: Placement[];
  remove: Placement[];
  /** Instances that no live host has room for. */
  unplaced: { endpoint: string; deployment: string; variant: string; missing: number }[];
}

const key = (w: Pick<VariantWant, "endpoint" | "deployment" | "variant">) =>
  `${w.endpoint}\0${w.deployment}\0${w.variant}`;

/**
 * Decides which instances run where, from what the cluster looks like now: placements on hosts that are
 * not live, of variants nobody wants, or of a variant other than the one their host is dedicated to
 * (HostRecord.serves) are removed; extra ones are removed (instances not yet InService
 * first, then from the host with the most of that variant); missing ones go to the live host that has room
 * and, in this order, is dedicated to the variant, has the fewest instances of the variant (spread), the model data cached, the fewest
 * instances (least loaded), the smallest id (deterministic). Pure: the placer loop applies the plan.
 */
export function planPlacements(
  hosts: Pick<HostRecord, "id" | "slots" | "gpus" | "models" | "serves">[],
  current: Placement[],
  wants: VariantWant[],
  o: { now: number; newId: () => string; inService: (p: Placement) => boolean },
): PlacementPlan {
  const live = new Map(hosts.map((h) => [h.id, h]));
  const wanted = new Map(wants.map((w) => [key(w), w]));
  const remove: Placement[] = [];
  let kept: Placement[] = [];
  for (const p of current) {
    const host = live.get(p.host);
    if (host && wanted.has(key(p)) && takes(host, p)) kept.push(p);
    else remove.push(p);
  }
  const load = (host: string, of?: VariantWant) =>
    kept.filter((p) => p.host === host && (!of || key(p) === key(of))).length;

  // Scale in first, so that the slots it frees can take other variants' instances in the same pass.
  for (const w of wants) {
    const mine = kept.filter((p) => key(p) === key(w));
    const extra = mine.length - w.desired;
    if (extra <= 0) continue;
    const order = [...mine].sort(
      (a, b) =>
        Number(o.inService(a)) - Number(o.inService(b)) ||
        load(b.host, w) - load(a.host, w) ||
        load(b.host) - load(a.host) ||
        b.createdAt - a.createdAt,
    );
    const out = new Set(order.slice(0, extra));
    remove.push(...out);
    kept = kept.filter((p) => !out.has(p));
  }

  const add: Placement[] = [];
  const unplaced: PlacementPlan["unplaced"] = [];
  for (const w of wants) {
    let missing = w.desired - kept.filter((p) => key(p) === key(w)).length;
    while (missing > 0) {
      const candidates = [...live.values()]
        .filter((h) => load(h.id) < h.slots && (!w.gpu || h.gpus > 0) && takes(h, w))
        .sort(
          (a, b) =>
            Number(!!b.serves) - Number(!!a.serves) ||
            load(a.id, w) - load(b.id, w) ||
            Number(has(b, w.model)) - Number(has(a, w.model)) ||
            load(a.id) - load(b.id) ||
            (a.id < b.id ? -1 : 1),
        );
      const host = candidates[0];
      if (!host) break;
      const p: Placement = {
        id: o.newId(),
        endpoint: w.endpoint,
        deployment: w.deployment,
        variant: w.variant,
        host: host.id,
        createdAt: o.now,
      };
      add.push(p);
      kept.push(p);
      missing--;
    }
    if (missing > 0)
      unplaced.push({ endpoint: w.endpoint, deployment: w.deployment, variant: w.variant, missing });
  }
  return { add, remove, unplaced };
}

/** A dedicated host takes only its own variant; any other host takes every variant. */
const takes = (h: { serves?: string }, v: { endpoint: string; variant: string }) =>
  !h.serves || h.serves === `${v.endpoint}/${v.variant}`;

const has = (h: { models: string[] }, model: string | undefined) => !!model && h.models.includes(model);
