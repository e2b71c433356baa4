-- Models, endpoint configs and endpoints (JSON bodies by name), invocations (the queue), instances, the outbox.
CREATE TABLE models (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE endpoint_configs (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE endpoints (
  name TEXT PRIMARY KEY,
  config_name TEXT NOT NULL,
  status TEXT NOT NULL,
  failure_reason TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE invocations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  endpoint TEXT NOT NULL,
  state TEXT NOT NULL,
  input_location TEXT NOT NULL,
  output_location TEXT NOT NULL,
  failure_location TEXT NOT NULL,
  content_type TEXT,
  accept TEXT,
  custom_attributes TEXT,
  request_ttl_s INTEGER NOT NULL,
  invocation_timeout_s INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  progress_s REAL,
  total_s REAL,
  error_code TEXT,
  error_message TEXT,
  model_time_ms INTEGER,
  webhook TEXT
);
CREATE INDEX invocations_queue ON invocations (endpoint, state, seq);
CREATE INDEX invocations_state ON invocations (state, expires_at);
CREATE INDEX invocations_lease ON invocations (state, lease_expires_at);
CREATE TABLE instances (
  id TEXT PRIMARY KEY,
  endpoint TEXT NOT NULL,
  variant TEXT NOT NULL,
  host TEXT NOT NULL,
  state TEXT NOT NULL,
  port INTEGER,
  pid INTEGER,
  reason TEXT,
  started_at INTEGER NOT NULL,
  in_service_at INTEGER,
  ended_at INTEGER
);
CREATE INDEX instances_endpoint ON instances (endpoint, state);
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  invocation_id TEXT NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER
);
CREATE INDEX outbox_pending ON outbox (delivered_at, id);
