import type pg from "pg";
import type { AwsResource, AwsResourceKind, AwsResourceStore } from "../aws-store.js";
import { toAwsResource } from "../rows.js";
import { rows } from "./db.js";

/** AWS metadata on PostgreSQL (migrations/postgres/0005-aws.sql). */
export class PgAwsStore implements AwsResourceStore {
  constructor(private readonly pool: pg.Pool) {}

  async put(kind: AwsResourceKind, name: string, body: string, now: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO aws_resources (kind, name, body, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
      [kind, name, body, now],
    );
  }

  async create(kind: AwsResourceKind, name: string, body: string, now: number): Promise<boolean> {
    const r = await this.pool.query(
      `INSERT INTO aws_resources (kind, name, body, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, name) DO NOTHING`,
      [kind, name, body, now],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async get(kind: AwsResourceKind, name: string): Promise<AwsResource | undefined> {
    const [r] = await rows(this.pool, "SELECT * FROM aws_resources WHERE kind = $1 AND name = $2", [
      kind,
      name,
    ]);
    return r ? toAwsResource(r) : undefined;
  }

  async list(kind: AwsResourceKind, prefix = ""): Promise<AwsResource[]> {
    // left(), not LIKE: names may hold % and _. COLLATE "C": byte order, as SQLite sorts.
    const rs = await rows(
      this.pool,
      `SELECT * FROM aws_resources WHERE kind = $1 AND left(name, length($2)) = $2 ORDER BY name COLLATE "C"`,
      [kind, prefix],
    );
    return rs.map(toAwsResource);
  }

  async delete(kind: AwsResourceKind, name: string): Promise<boolean> {
    const r = await this.pool.query("DELETE FROM aws_resources WHERE kind = $1 AND name = $2", [kind, name]);
    return (r.rowCount ?? 0) > 0;
  }
}
