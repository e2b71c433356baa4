import type { Scope } from "../auth/types.js";

/** An API key as stored: never the token itself, only its SHA-256. Times are epoch milliseconds. */
export interface ApiKeyRecord {
  /** 12 hex digits, the middle of the token `kk_<id>_<secret>`. */
  id: string;
  name: string;
  scope: Scope;
  /** SHA-256 (hex) of the whole token. */
  hash: string;
  createdAt: number;
  revokedAt?: number;
  lastUsedAt?: number;
}

/** A browser session made from a key (the dashboard's login): its token's SHA-256, and the key behind it. */
export interface SessionRecord {
  hash: string;
  keyId: string;
  createdAt: number;
  expiresAt: number;
}

/** Uses are recorded at most this often per key: a busy key must not write on every request. */
export const TOUCH_EVERY_MS = 60_000;

/**
 * API keys and browser sessions, on SQLite (src/queue/sqlite/key-store.ts) and PostgreSQL
 * (src/queue/postgres/key-store.ts); both pass test/queue/key-contract.ts.
 */
export interface KeyStore {
  /** Throws AlreadyExists for a duplicate id. */
  createKey(key: ApiKeyRecord): Promise<void>;
  getKey(id: string): Promise<ApiKeyRecord | undefined>;
  /** All keys, revoked ones included, oldest first. */
  listKeys(): Promise<ApiKeyRecord[]>;
  /** Marks a key revoked and ends its sessions; false when there is no such key or it was revoked already. */
  revokeKey(id: string, now: number): Promise<boolean>;
  /** Records a use; may be coarse (at most once a minute per key). */
  touchKey(id: string, now: number): Promise<void>;
  /** Keys not revoked. */
  countActiveKeys(): Promise<number>;

  createSession(session: SessionRecord): Promise<void>;
  /** The session, if it exists and has not expired at `now`. */
  getSession(hash: string, now: number): Promise<SessionRecord | undefined>;
  deleteSession(hash: string): Promise<void>;
  /** Removes expired sessions; returns how many. */
  deleteExpiredSessions(now: number): Promise<number>;
}
