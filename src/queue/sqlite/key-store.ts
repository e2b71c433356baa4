import type Database from "better-sqlite3";
import { alreadyExists } from "../../errors.js";
import { TOUCH_EVERY_MS, type ApiKeyRecord, type KeyStore, type SessionRecord } from "../key-store.js";
import { toApiKey, toSession, type Row } from "../rows.js";

/** API keys and sessions in the shared SQLite file (migrations/sqlite/0006-auth.sql). */
export class SqliteKeyStore implements KeyStore {
  constructor(private readonly db: Database.Database) {}

  async createKey(k: ApiKeyRecord): Promise<void> {
    try {
      this.db
        .prepare(
          `INSERT INTO api_keys (id, name, scope, hash, created_at, revoked_at, last_used_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(k.id, k.name, k.scope, k.hash, k.createdAt, k.revokedAt ?? null, k.lastUsedAt ?? null);
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") throw alreadyExists("Key", k.id);
      throw e;
    }
  }

  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const r = this.db.prepare("SELECT * FROM api_keys WHERE id = ?").get(id) as Row | undefined;
    return r ? toApiKey(r) : undefined;
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    return (this.db.prepare("SELECT * FROM api_keys ORDER BY created_at, id").all() as Row[]).map(toApiKey);
  }

  async revokeKey(id: string, now: number): Promise<boolean> {
    return this.db.transaction(() => {
      const changed =
        this.db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").run(now, id)
          .changes > 0;
      this.db.prepare("DELETE FROM auth_sessions WHERE key_id = ?").run(id);
      return changed;
    })();
  }

  async touchKey(id: string, now: number): Promise<void> {
    this.db
      .prepare(
        "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
      )
      .run(now, id, now - TOUCH_EVERY_MS);
  }

  async countActiveKeys(): Promise<number> {
    const r = this.db.prepare("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL").get() as Row;
    return Number(r.n);
  }

  async createSession(s: SessionRecord): Promise<void> {
    this.db
      .prepare("INSERT INTO auth_sessions (hash, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
      .run(s.hash, s.keyId, s.createdAt, s.expiresAt);
  }

  async getSession(hash: string, now: number): Promise<SessionRecord | undefined> {
    const r = this.db
      .prepare("SELECT * FROM auth_sessions WHERE hash = ? AND expires_at > ?")
      .get(hash, now) as Row | undefined;
    return r ? toSession(r) : undefined;
  }

  async deleteSession(hash: string): Promise<void> {
    this.db.prepare("DELETE FROM auth_sessions WHERE hash = ?").run(hash);
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    return this.db.prepare("DELETE FROM auth_sessions WHERE expires_at <= ?").run(now).changes;
  }
}
