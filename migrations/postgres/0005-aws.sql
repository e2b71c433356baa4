-- AWS-only metadata the core does not reason about (src/queue/aws-store.ts): IAM roles, resource tags, CloudWatch alarms.
CREATE TABLE aws_resources (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  body TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (kind, name)
);
