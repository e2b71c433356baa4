-- The autoscaler: scalable targets, their policies, and the history of scaling activities.
CREATE TABLE scaling_targets (
  resource_id TEXT PRIMARY KEY,
  body TEXT NOT NULL
);
CREATE TABLE scaling_policies (
  resource_id TEXT NOT NULL,
  policy_name TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (resource_id, policy_name)
);
CREATE TABLE scaling_activities (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  resource_id TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX scaling_activities_resource ON scaling_activities (resource_id, seq);
