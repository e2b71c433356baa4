import type Database from "better-sqlite3";
import type { ScalableTarget, ScalingActivity, ScalingPolicy, ScalingStore } from "../../autoscale/types.js";

import type { Row } from "../rows.js";

/**
 * The autoscaler's tables in the shared SQLite file (migration 0002-scaling). Each record is kept as its
 * AWS-shaped JSON body; the keys it is looked up by are columns.
 */
export class SqliteScalingStore implements ScalingStore {
  constructor(private readonly db: Database.Database) {}

  async putTarget(t: ScalableTarget): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO scaling_targets (resource_id, body) VALUES (?, ?)
         ON CONFLICT (resource_id) DO UPDATE SET body = excluded.body`,
      )
      .run(t.ResourceId, JSON.stringify(t));
  }

  async getTarget(resourceId: string): Promise<ScalableTarget | undefined> {
    const r = this.db.prepare("SELECT body FROM scaling_targets WHERE resource_id = ?").get(resourceId) as
      Row | undefined;
    return r ? (JSON.parse(String(r.body)) as ScalableTarget) : undefined;
  }

  async listTargets(): Promise<ScalableTarget[]> {
    const rows = this.db.prepare("SELECT body FROM scaling_targets ORDER BY resource_id").all() as Row[];
    return rows.map((r) => JSON.parse(String(r.body)) as ScalableTarget);
  }

  async deleteTarget(resourceId: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.db.prepare("DELETE FROM scaling_policies WHERE resource_id = ?").run(resourceId);
      return this.db.prepare("DELETE FROM scaling_targets WHERE resource_id = ?").run(resourceId).changes > 0;
    })();
  }

  async putPolicy(p: ScalingPolicy): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO scaling_policies (resource_id, policy_name, body) VALUES (?, ?, ?)
         ON CONFLICT (resource_id, policy_name) DO UPDATE SET body = excluded.body`,
      )
      .run(p.ResourceId, p.PolicyName, JSON.stringify(p));
  }

  async listPolicies(filter: { resourceId?: string }): Promise<ScalingPolicy[]> {
    const rows = (
      filter.resourceId
        ? this.db
            .prepare("SELECT body FROM scaling_policies WHERE resource_id = ? ORDER BY policy_name")
            .all(filter.resourceId)
        : this.db.prepare("SELECT body FROM scaling_policies ORDER BY resource_id, policy_name").all()
    ) as Row[];
    return rows.map((r) => JSON.parse(String(r.body)) as ScalingPolicy);
  }

  async deletePolicy(resourceId: string, policyName: string): Promise<boolean> {
    return (
      this.db
        .prepare("DELETE FROM scaling_policies WHERE resource_id = ? AND policy_name = ?")
        .run(resourceId, policyName).changes > 0
    );
  }

  async addActivity(a: ScalingActivity): Promise<void> {
    this.db
      .prepare("INSERT INTO scaling_activities (id, resource_id, body) VALUES (?, ?, ?)")
      .run(a.ActivityId, a.ResourceId, JSON.stringify(a));
  }

  async updateActivity(a: ScalingActivity): Promise<void> {
    this.db
      .prepare("UPDATE scaling_activities SET body = ? WHERE id = ?")
      .run(JSON.stringify(a), a.ActivityId);
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
      where.push("resource_id = ?");
      args.push(filter.resourceId);
    }
    if (filter.resourcePrefix !== undefined) {
      where.push("substr(resource_id, 1, length(?)) = ?");
      args.push(filter.resourcePrefix, filter.resourcePrefix);
    }
    if (filter.beforeSeq !== undefined) {
      where.push("seq < ?");
      args.push(filter.beforeSeq);
    }
    const rows = this.db
      .prepare(
        `SELECT seq, body FROM scaling_activities ${where.length ? "WHERE " + where.join(" AND ") : ""}
         ORDER BY seq DESC LIMIT ?`,
      )
      .all(...args, filter.limit) as Row[];
    return {
      activities: rows.map((r) => JSON.parse(String(r.body)) as ScalingActivity),
      lastSeq: rows.length ? Number(rows[rows.length - 1]!.seq) : undefined,
    };
  }
}
