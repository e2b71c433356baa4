-- The notify box: deliveries expanded from the outbox (one row per target; the id is the stable
-- webhook-id / SNS MessageId), their attempts, signing secrets, and SNS-style topics and subscriptions.
CREATE TABLE notify_deliveries (
  id TEXT PRIMARY KEY,
  event_id BIGINT,
  invocation_id TEXT,
  kind TEXT NOT NULL,
  event_type TEXT NOT NULL,
  target TEXT NOT NULL,
  scope TEXT,
  body TEXT NOT NULL,
  headers TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  give_up_at BIGINT NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  delivered_at BIGINT,
  failed_at BIGINT
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (next_attempt_at)
  WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX notify_deliveries_invocation ON notify_deliveries (invocation_id);
CREATE TABLE notify_attempts (
  delivery_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  at BIGINT NOT NULL,
  status INTEGER,
  error TEXT,
  duration_ms BIGINT NOT NULL,
  PRIMARY KEY (delivery_id, n)
);
CREATE TABLE notify_secrets (
  scope TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE sns_topics (
  arn TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  attributes TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE sns_subscriptions (
  arn TEXT PRIMARY KEY,
  topic_arn TEXT NOT NULL,
  protocol TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  token TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  confirmed_at BIGINT,
  UNIQUE (topic_arn, protocol, endpoint)
);
