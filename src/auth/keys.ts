import type { ApiKeyRecord, KeyStore } from "../queue/key-store.js";
import { KikitoriError, notFound, validation } from "../errors.js";
import { newApiKey } from "./tokens.js";
import { isScope, SCOPES, type Principal, type Scope } from "./types.js";

/** Creating, listing and revoking keys: one implementation for the CLI and the admin routes. */

export async function createKey(
  keys: KeyStore,
  input: { name: unknown; scope: unknown },
): Promise<{ key: ApiKeyRecord; token: string }> {
  if (typeof input.name !== "string" || !/^[\x20-\x7e]{1,100}$/.test(input.name))
    throw validation("name", "must be 1-100 printable ASCII characters");
  if (!isScope(input.scope)) throw validation("scope", `must be one of ${SCOPES.join(", ")}`);
  const { id, token, hash } = newApiKey();
  const key: ApiKeyRecord = { id, name: input.name, scope: input.scope, hash, createdAt: Date.now() };
  await keys.createKey(key);
  return { key, token };
}

export async function revokeKey(keys: KeyStore, id: string): Promise<ApiKeyRecord> {
  const key = await keys.getKey(id.replace(/^kk_/, ""));
  if (!key) throw notFound("Key", id);
  await keys.revokeKey(key.id, Date.now());
  return (await keys.getKey(key.id))!;
}

/** The public view of a key: never its hash. */
export function keyView(k: ApiKeyRecord) {
  const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: k.id,
    name: k.name,
    scope: k.scope,
    createdAt: iso(k.createdAt),
    lastUsedAt: iso(k.lastUsedAt),
    revokedAt: iso(k.revokedAt),
  };
}

/**
 * Where a principal of the `invoke` scope may put and read objects: `uploads/<principal id>/` in any
 * bucket. Keys elsewhere belong to admins (model data, outputs of other callers).
 */
export const uploadPrefix = (p: Principal) => `uploads/${p.id}/`;

/** Whether `p` may read or write the object `key` directly (admins: any; others: their upload prefix). */
export const mayTouchObject = (p: Principal, key: string) =>
  p.scope === "admin" || key.startsWith(uploadPrefix(p));

/** Whether `p` may see an invocation (admins: all; others: those they created). */
export const maySeeInvocation = (p: Principal, inv: { principal?: string }) =>
  p.scope === "admin" || inv.principal === p.id;

export type { Scope };

/** The invocation if `p` may see it; otherwise the same 404 as for one that does not exist. */
export async function visibleInvocation<T extends { principal?: string }>(
  p: Principal | undefined,
  id: string,
  get: (id: string) => Promise<T>,
): Promise<T> {
  const inv = await get(id);
  if (p && !maySeeInvocation(p, inv)) throw notFound("Invocation", id);
  return inv;
}

/** Refuses an object key outside the caller's upload prefix (for principals below admin). */
export function checkObjectAccess(p: Principal | undefined, key: string, what = "object"): void {
  if (p && !mayTouchObject(p, key))
    throw new KikitoriError(
      "Forbidden",
      `a key of scope "${p.scope}" may only use ${what}s under ${uploadPrefix(p)} (got "${key.slice(0, 200)}")`,
    );
}
