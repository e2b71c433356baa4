import type pg from "pg";
import type { ScalableTarget, ScalingActivity, ScalingPolicy, ScalingStore } from "../../autoscale/types.js";
import { rows, tx } from "./db.js";

const body = <T>(r: { body?: unknown }) => JSON.parse(String(r.body)) as T;

/** The autoscaler's tables on PostgreSQL: AWS-shaped JSON bodies, with the keys they are found by as columns. */
export class PgScalingStore implements ScalingStore {
  constructor(private readonly pool: pg.Pool) {}

  async putTarget(t: ScalableTarget): Promise<void> {
    await this.pool.query(
      `INSERT INTO scaling_targets (resource_id, body) VALUES ($1, $2)
         ON CONFLICT (resource_id) DO UPDATE SET body = excluded.body`,
      [t.ResourceId, JSON.stringify(t)],
    );
  }

  async getTarget(resourceId: string): Promise<ScalableTarget | undefined> {
    const [r] = await rows(this.pool, "SELECT body FROM scaling_targets WHERE resource_id = $1", [
      resourceId,
    ]);
    return r ? body<ScalableTarget>(r) : undefined;
  }

  async listTargets(): Promise<ScalableTarget[]> {
    return (await rows(this.pool, `SELECT body FROM scaling_targets ORDER BY resource_id COLLATE "C"`)).map(
      body<ScalableTarget>,
    );
  }

  async deleteTarget(resourceId: string): Promise<boolean> {
    return tx(this.pool, async (c) => {
      await c.query("DELETE FROM scaling_policies WHERE resource_id = $1", [resourceId]);
      return (
        ((await c.query("DELETE FROM scaling_targets WHERE resource_id = $1", [resourceId])).rowCount ?? 0) >
        0
      );
    });
  }

  async putPolicy(p: ScalingPolicy): Promise<void> {
    await this.pool.query(
      `INSERT INTO scaling_policies (resource_id, policy_name, body) VALUES ($1, $2, $3)
         ON CONFLICT (resource_id, policy_name) DO UPDATE SET body = excluded.body`,
      [p.ResourceId, p.PolicyName, JSON.stringify(p)],
    );
  }

  async listPolicies(filter: { resourceId?: string }): Promise<ScalingPolicy[]> {
    const rs = filter.resourceId
      ? await rows(
          this.pool,
          `SELECT body FROM scaling_policies WHERE resource_id = $1 ORDER BY policy_name COLLATE "C"`,
          [filter.resourceId],
        )
      : await rows(
          this.pool,
          `SELECT body FROM scaling_policies ORDER BY resource_id COLLATE "C", policy_name COLLATE "C"`,
        );
    return rs.map(body<ScalingPolicy>);
  }

  async deletePolicy(resourceId: string, policyName: string): Promise<boolean> {
    const r = await this.pool.query(
      "DELETE FROM scaling_policies WHERE resource_id = $1 AND policy_name = $2",
      [resourceId, policyName],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async addActivity(a: ScalingActivity): Promise<void> {
    await this.pool.query("INSERT INTO scaling_activities (id, resource_id, body) VALUES ($1, $2, $3)", [
      a.ActivityId,
      a.ResourceId,
      JSON.stringify(a),
    ]);
  }

  async updateActivity(a: ScalingActivity): Promise<void> {
    await this.pool.query("UPDATE scaling_activities SET body = $1 WHERE id = $2", [
      JSON.stringify(a),
      a.ActivityId,
    ]);
  }

  async listActivities(filter: {
    resourceId?: string;
    resourcePrefix?: string;
    limit: number;
    beforeSeq?: number;
  }): Promise<{ activities: ScalingActivity[]; lastSeq?: number }> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.resourceId) {
      args.push(filter.resourceId);
      where.push(`resource_id = $${args.length}`);
    }
    if (filter.resourcePrefix !== undefined) {
      args.push(filter.resourcePrefix);
      where.push(`left(resource_id, length($${args.length})) = $${args.length}`);
    }
    if (filter.beforeSeq !== undefined) {
      args.push(filter.beforeSeq);
      where.push(`seq < $${args.length}`);
    }
    args.push(filter.limit);
    const rs = await rows(
      this.pool,
      `SELECT seq, body FROM scaling_activities ${where.length ? "WHERE " + where.join(" AND ") : ""}
        ORDER BY seq DESC LIMIT $${args.length}`,
      args,
    );
    return {
      activities: rs.map(body<ScalingActivity>),
      lastSeq: rs.length ? Number(rs[rs.length - 1]!.seq) : undefined,
    };
  }
}
