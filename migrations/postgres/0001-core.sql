-- Models, endpoint configs and endpoints (JSON bodies by name), invocations (the queue), instances, the outbox.
-- Times are epoch milliseconds (bigint), as in the SQLite schema.
CREATE TABLE models (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE endpoint_configs (
  name TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE endpoints (
  name TEXT PRIMARY KEY,
  config_name TEXT NOT NULL,
  status TEXT NOT NULL,
  failure_reason TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE invocations (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  lease_owner TEXT,
  lease_expires_at BIGINT,
  cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
  progress_s DOUBLE PRECISION,
  total_s DOUBLE PRECISION,
  error_code TEXT,
  error_message TEXT,
  model_time_ms BIGINT,
  webhook TEXT
);
-- The queue: leases scan only queued rows of one endpoint, oldest first.
CREATE INDEX invocations_queued ON invocations (endpoint, seq) WHERE state = 'Queued';
CREATE INDEX invocations_queued_expiry ON invocations (expires_at) WHERE state = 'Queued';
CREATE INDEX invocations_running_lease ON invocations (lease_expires_at) WHERE state = 'Running';
CREATE INDEX invocations_endpoint_state ON invocations (endpoint, state, seq);
CREATE INDEX invocations_state_seq ON invocations (state, seq);
CREATE TABLE instances (
  id TEXT PRIMARY KEY,
  endpoint TEXT NOT NULL,
  variant TEXT NOT NULL,
  host TEXT NOT NULL,
  state TEXT NOT NULL,
  port INTEGER,
  pid INTEGER,
  reason TEXT,
  started_at BIGINT NOT NULL,
  in_service_at BIGINT,
  ended_at BIGINT
);
CREATE INDEX instances_endpoint ON instances (endpoint, state);
CREATE TABLE outbox (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  invocation_id TEXT NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  delivered_at BIGINT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL;
