import { useCallback, useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api.js";
import { bytes, dateTime } from "../format.js";
import type { ApiKey, Model, Principal } from "../types.js";

interface CachedModel {
  name: string;
  bytes: number;
  sha256?: string;
  default: boolean;
}

/** The weights in the model cache, the SageMaker-style models, and (for those allowed) the API keys. */
export function Models({ me }: { me: Principal }) {
  const [cache, setCache] = useState<CachedModel[]>();
  const [models, setModels] = useState<Model[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    api<{ models: CachedModel[] }>("GET", "/v1/model-cache").then(
      (r) => setCache(r.models),
      (e: Error) => setError(e.message),
    );
    api<{ models: Model[] }>("GET", "/v1/models").then(
      (r) => setModels(r.models),
      (e: Error) => setError(e.message),
    );
  }, []);
  return (
    <div class="detail">
      <section class="card" aria-labelledby="cache-title">
        <h1 id="cache-title">Models in the cache</h1>
        {error && <p class="error">{error}</p>}
        {cache?.length === 0 && (
          <p class="muted">
            None: <code>kikitori models pull tiny.en</code> or <code>kikitori models import DIR</code> adds
            one.
          </p>
        )}
        {cache && cache.length > 0 && (
          <table class="list" data-testid="model-cache">
            <thead>
              <tr>
                <th>Name</th>
                <th>Size</th>
                <th>SHA-256</th>
              </tr>
            </thead>
            <tbody>
              {cache.map((m) => (
                <tr>
                  <td data-label="Name">
                    {m.name} {m.default && <span class="badge">default</span>}
                  </td>
                  <td data-label="Size">{bytes(m.bytes)}</td>
                  <td data-label="SHA-256">
                    <code title={m.sha256}>{m.sha256 ? `${m.sha256.slice(0, 16)}…` : "not recorded"}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card" aria-labelledby="models-title">
        <h2 id="models-title">Models (what endpoints run)</h2>
        {models?.length === 0 && <p class="muted">None yet.</p>}
        {models && models.length > 0 && (
          <table class="list">
            <thead>
              <tr>
                <th>Name</th>
                <th>Image</th>
                <th>Model data</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {models.map((m) => (
                <tr>
                  <td data-label="Name">{m.name}</td>
                  <td data-label="Image">
                    <code>{m.image}</code>
                  </td>
                  <td data-label="Model data">
                    {m.modelDataUrl ? <code>{m.modelDataUrl}</code> : "built-in default"}
                  </td>
                  <td data-label="Created">{dateTime(m.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <Keys me={me} />
    </div>
  );
}

function Keys({ me }: { me: Principal }) {
  const [keys, setKeys] = useState<ApiKey[]>();
  const [name, setName] = useState("");
  const [scope, setScope] = useState("invoke");
  const [created, setCreated] = useState<{ name: string; token: string }>();
  const [error, setError] = useState<string>();
  const load = useCallback(
    () =>
      api<{ keys: ApiKey[] }>("GET", "/v1/keys").then(
        (r) => setKeys(r.keys),
        (e: Error) =>
          setError(e instanceof ApiError && e.status === 404 ? "This server has no API keys." : e.message),
      ),
    [],
  );
  const admin = me.scope === "admin";
  useEffect(() => {
    if (admin) void load();
  }, [admin, load]);
  if (!admin)
    return (
      <section class="card">
        <h2>API keys</h2>
        <p class="muted">Managing keys needs an admin key.</p>
      </section>
    );
  const create = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      // The answer carries the key itself (`key`), this once.
      const r = await api<{ key: string; name: string }>("POST", "/v1/keys", { name, scope });
      setCreated({ name: r.name ?? name, token: r.key });
      setName("");
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const revoke = async (k: ApiKey) => {
    if (!confirm(`Revoke the key "${k.name}"? Clients using it stop working at once.`)) return;
    try {
      await api("DELETE", `/v1/keys/${encodeURIComponent(k.id)}`);
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      {me.mode === "open" && (
        <p class="muted">
          Open mode: no keys are needed on this loopback address. Creating one turns authentication on.
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {created && (
        <div class="secret" role="status" data-testid="new-key">
          <p>
            The key <strong>{created.name}</strong>; it is shown only this once:
          </p>
          <code class="token">{created.token}</code>{" "}
          <button type="button" class="small" onClick={() => navigator.clipboard?.writeText(created.token)}>
            Copy
          </button>
        </div>
      )}
      <form class="options" onSubmit={create}>
        <label>
          Name <input required value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={64} />
        </label>
        <label>
          Scope{" "}
          <select value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
            <option value="invoke">invoke (its own results)</option>
            <option value="admin">admin (models, endpoints, scaling, keys)</option>
          </select>
        </label>
        <button type="submit">Create key</button>
      </form>
      {keys && keys.length > 0 && (
        <table class="list" data-testid="keys">
          <thead>
            <tr>
              <th>Name</th>
              <th>Scope</th>
              <th>Created</th>
              <th>Last used</th>
              <th>
                <span class="sr-only">Revoke</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr>
                <td data-label="Name">{k.name}</td>
                <td data-label="Scope">{k.scope}</td>
                <td data-label="Created">{dateTime(k.createdAt)}</td>
                <td data-label="Last used">{dateTime(k.lastUsedAt)}</td>
                <td>
                  {k.revokedAt ? (
                    <span class="muted">revoked</span>
                  ) : (
                    <button type="button" class="small" onClick={() => revoke(k)}>
                      Revoke<span class="sr-only"> {k.name}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
