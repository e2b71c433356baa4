import type pg from "pg";
import { alreadyExists } from "../../errors.js";
import { TOUCH_EVERY_MS, type ApiKeyRecord, type KeyStore, type SessionRecord } from "../key-store.js";
import { toApiKey, toSession } from "../rows.js";
import { isUniqueViolation, rows, tx } from "./db.js";

/** API keys and sessions on PostgreSQL (migrations/postgres/0006-auth.sql). */
export class PgKeyStore implements KeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async createKey(k: ApiKeyRecord): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO api_keys (id, name, scope, hash, created_at, revoked_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [k.id, k.name, k.scope, k.hash, k.createdAt, k.revokedAt ?? null, k.lastUsedAt ?? null],
      );
    } catch (e) {
      if (isUniqueViolation(e)) throw alreadyExists("Key", k.id);
      throw e;
    }
  }

  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const [r] = await rows(this.pool, "SELECT * FROM api_keys WHERE id = $1", [id]);
    return r ? toApiKey(r) : undefined;
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    // COLLATE "C": ties on created_at in byte order, as SQLite sorts.
    return (await rows(this.pool, `SELECT * FROM api_keys ORDER BY created_at, id COLLATE "C"`)).map(
      toApiKey,
    );
  }

  async revokeKey(id: string, now: number): Promise<boolean> {
    return tx(this.pool, async (c) => {
      const r = await c.query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", [
        now,
        id,
      ]);
      await c.query("DELETE FROM auth_sessions WHERE key_id = $1", [id]);
      return (r.rowCount ?? 0) > 0;
    });
  }

  async touchKey(id: string, now: number): Promise<void> {
    await this.pool.query(
      "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
      [now, id, now - TOUCH_EVERY_MS],
    );
  }

  async countActiveKeys(): Promise<number> {
    const [r] = await rows(this.pool, "SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL");
    return Number(r!.n);
  }

  async createSession(s: SessionRecord): Promise<void> {
    await this.pool.query(
      "INSERT INTO auth_sessions (hash, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
      [s.hash, s.keyId, s.createdAt, s.expiresAt],
    );
  }

  async getSession(hash: string, now: number): Promise<SessionRecord | undefined> {
    const [r] = await rows(this.pool, "SELECT * FROM auth_sessions WHERE hash = $1 AND expires_at > $2", [
      hash,
      now,
    ]);
    return r ? toSession(r) : undefined;
  }

  async deleteSession(hash: string): Promise<void> {
    await this.pool.query("DELETE FROM auth_sessions WHERE hash = $1", [hash]);
  }

  async deleteExpiredSessions(now: number): Promise<number> {
    return (await this.pool.query("DELETE FROM auth_sessions WHERE expires_at <= $1", [now])).rowCount ?? 0;
  }
}
