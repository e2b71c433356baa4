import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { migrationsOf } from "../../src/queue/migrations.js";
import { forEachBackend, newPostgresDatabase } from "../helpers/backends.js";
import { tempDir } from "../helpers/fixtures.js";
import { openSqlite } from "../../src/backends.js";
import { openPostgres } from "../../src/queue/postgres/index.js";

const SNAPSHOT = "0009-endpoint-snapshot";

/** What a database made before 0009 holds: a live endpoint, its config and model, work queued and finished. */
const LEGACY_ROWS = `
INSERT INTO models (name, body, created_at) VALUES
  ('m', '{"name":"m","image":"kikitori/whisper","environment":{"A":"1"},"createdAt":1}', 1),
  ('unused', '{"name":"unused","image":"kikitori/whisper","environment":{},"createdAt":1}', 1);
INSERT INTO endpoint_configs (name, body, created_at) VALUES ('c', '{"name":"c","variants":[{"variantName":"AllTraffic","modelName":"m","instanceType":"local","initialInstanceCount":1}],"asyncConfig":{"outputPath":"s3://b/out","maxConcurrentInvocationsPerInstance":1,"notification":{"errorTopic":"arn:aws:sns:us-east-1:000000000000:err"}},"createdAt":2}', 2);
INSERT INTO endpoints (name, config_name, status, created_at, updated_at) VALUES
  ('live', 'c', 'InService', 3, 4),
  ('orphan', 'deleted-config', 'InService', 3, 4);
INSERT INTO invocations (id, endpoint, state, input_location, output_location, failure_location,
  request_ttl_s, invocation_timeout_s, max_attempts, created_at, expires_at) VALUES
  ('queued', 'live', 'Queued', 's3://b/in', 's3://b/out/q.out', 's3://b/out/q-error.out', 60, 60, 3, 5, 99999999),
  ('done', 'live', 'Succeeded', 's3://b/in', 's3://b/out/d.out', 's3://b/out/d-error.out', 60, 60, 3, 5, 99999999);
`;

/**
 * 0009 gives the endpoints made before it their own copy of config and models, and the unfinished
 * invocations their endpoint's SNS topics: a database upgraded with live endpoints keeps serving them
 * when their config is deleted afterwards.
 */
forEachBackend((backend) => {
  test(`${backend}: ${SNAPSHOT} copies each live endpoint's config and models, and unfinished work's topics`, async () => {
    const before = migrationsOf(backend).filter((m) => m.name < SNAPSHOT);
    let open: () => Promise<{ state: import("../../src/queue/types.js").StateStore; close(): Promise<void> }>;
    if (backend === "sqlite") {
      const file = join(tempDir("kk-mig-"), "kikitori.db");
      const db = new Database(file);
      db.exec("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
      for (const m of before) {
        db.exec(m.sql);
        db.prepare("INSERT INTO schema_migrations VALUES (?, 0)").run(m.name);
      }
      db.exec(LEGACY_ROWS);
      db.close();
      open = async () => openSqlite(file);
    } else {
      const url = await newPostgresDatabase();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)");
      for (const m of before) {
        await c.query(m.sql);
        await c.query("INSERT INTO schema_migrations VALUES ($1, 0)", [m.name]);
      }
      await c.query(LEGACY_ROWS);
      await c.end();
      open = () => openPostgres(url, { poolMax: 2 });
    }
    const s = await open();
    try {
      const live = await s.state.getEndpoint("live");
      assert.equal(live?.deployment?.config.name, "c");
      assert.deepEqual(live?.deployment?.config.variants[0]?.modelName, "m");
      assert.deepEqual(
        live?.deployment?.models.map((m) => [m.name, m.environment]),
        [["m", { A: "1" }]],
      );
      assert.equal(live?.pending, undefined);
      // The config was gone already: nothing to copy (the endpoint was broken before too).
      assert.equal((await s.state.getEndpoint("orphan"))?.deployment, undefined);
      assert.deepEqual((await s.state.getInvocation("queued"))?.notification, {
        errorTopic: "arn:aws:sns:us-east-1:000000000000:err",
      });
      assert.equal((await s.state.getInvocation("done"))?.notification, undefined);
      // The copy is the endpoint's own: deleting the config and model leaves it whole.
      await s.state.deleteEndpointConfig("c");
      await s.state.deleteModel("m");
      assert.equal((await s.state.getEndpoint("live"))?.deployment?.models[0]?.image, "kikitori/whisper");
    } finally {
      await s.close();
    }
  });
});
