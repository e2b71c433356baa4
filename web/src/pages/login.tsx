import { useState } from "preact/hooks";
import { api, ApiError } from "../api.js";

/** Signs in with an API key: the server answers with a session cookie (HttpOnly), never stored here. */
export function Login({ onLogin }: { onLogin: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api("POST", "/v1/auth/session", { key: key.trim() });
      setKey("");
      onLogin();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="login card">
      <h1>Sign in</h1>
      <p class="muted">
        Use an API key (<code>kikitori keys create --name me --scope admin</code> prints one).
      </p>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
