-- The notify box: deliveries expanded from the outbox (one row per target; the id is the stable
-- webhook-id / SNS MessageId), their attempts, signing secrets, and SNS-style topics and subscriptions.
CREATE TABLE notify_deliveries (
  id TEXT PRIMARY KEY,
  event_id INTEGER,
  invocation_id TEXT,
  kind TEXT NOT NULL,
  event_type TEXT NOT NULL,
  target TEXT NOT NULL,
  scope TEXT,
  body TEXT NOT NULL,
  headers TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  give_up_at INTEGER NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  delivered_at INTEGER,
  failed_at INTEGER
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (delivered_at, failed_at, next_attempt_at);
CREATE INDEX notify_deliveries_invocation ON notify_deliveries (invocation_id);
CREATE TABLE notify_attempts (
  delivery_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL,
  PRIMARY KEY (delivery_id, n)
);
CREATE TABLE notify_secrets (
  scope TEXT PRIMARY KEY,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE sns_topics (
  arn TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  attributes TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE sns_subscriptions (
  arn TEXT PRIMARY KEY,
  topic_arn TEXT NOT NULL,
  protocol TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  token TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  confirmed_at INTEGER
);
CREATE INDEX sns_subscriptions_topic ON sns_subscriptions (topic_arn);
