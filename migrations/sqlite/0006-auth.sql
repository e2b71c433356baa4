-- The auth layer: API keys (hashed), browser sessions made from them, and who created each invocation
-- (`principal`), so a key of the `invoke` scope sees only its own.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  scope TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  last_used_at INTEGER
);
CREATE TABLE auth_sessions (
  hash TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX auth_sessions_key ON auth_sessions (key_id);
ALTER TABLE invocations ADD COLUMN principal TEXT;
CREATE INDEX invocations_principal ON invocations (principal, seq);
