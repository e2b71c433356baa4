-- Many hosts, one control plane: worker hosts register and heartbeat, the leader writes desired instance
-- counts and places instances on hosts, hosts run what is placed on them.
CREATE TABLE hosts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  address TEXT,
  token TEXT,
  slots INTEGER NOT NULL,
  cpus INTEGER NOT NULL,
  gpus INTEGER NOT NULL,
  models TEXT NOT NULL,
  serves TEXT,
  state TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);
CREATE TABLE desired_instances (
  endpoint TEXT NOT NULL,
  variant TEXT NOT NULL,
  desired INTEGER NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (endpoint, variant)
);
CREATE TABLE placements (
  id TEXT PRIMARY KEY,
  endpoint TEXT NOT NULL,
  deployment TEXT NOT NULL,
  variant TEXT NOT NULL,
  host TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX placements_host ON placements (host);
CREATE INDEX placements_endpoint ON placements (endpoint, variant);
ALTER TABLE instances ADD COLUMN deployment TEXT;
ALTER TABLE instances ADD COLUMN placement TEXT;
ALTER TABLE instances ADD COLUMN address TEXT;
