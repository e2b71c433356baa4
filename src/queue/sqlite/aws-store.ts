import type Database from "better-sqlite3";
import type { AwsResource, AwsResourceKind, AwsResourceStore } from "../aws-store.js";
import { toAwsResource, type Row } from "../rows.js";

/** AWS metadata in the shared SQLite file (migrations/sqlite/0005-aws.sql). */
export class SqliteAwsStore implements AwsResourceStore {
  constructor(private readonly db: Database.Database) {}

  async put(kind: AwsResourceKind, name: string, body: string, now: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO aws_resources (kind, name, body, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
      )
      .run(kind, name, body, now);
  }

  async create(kind: AwsResourceKind, name: string, body: string, now: number): Promise<boolean> {
    return (
      this.db
        .prepare(
          `INSERT INTO aws_resources (kind, name, body, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (kind, name) DO NOTHING`,
        )
        .run(kind, name, body, now).changes > 0
    );
  }

  async get(kind: AwsResourceKind, name: string): Promise<AwsResource | undefined> {
    const r = this.db.prepare("SELECT * FROM aws_resources WHERE kind = ? AND name = ?").get(kind, name) as
      Row | undefined;
    return r ? toAwsResource(r) : undefined;
  }

  async list(kind: AwsResourceKind, prefix = ""): Promise<AwsResource[]> {
    // substr, not LIKE: names may hold % and _.
    const rows = this.db
      .prepare("SELECT * FROM aws_resources WHERE kind = ? AND substr(name, 1, ?) = ? ORDER BY name")
      .all(kind, prefix.length, prefix) as Row[];
    return rows.map(toAwsResource);
  }

  async delete(kind: AwsResourceKind, name: string): Promise<boolean> {
    return (
      this.db.prepare("DELETE FROM aws_resources WHERE kind = ? AND name = ?").run(kind, name).changes > 0
    );
  }
}
