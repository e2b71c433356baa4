import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { type Config, modelFile } from "./config.js";
import { Service } from "./core/service.js";
import { SqliteStateStore } from "./queue/sqlite/store.js";
import { FsObjectStore } from "./storage/index.js";
import { InstanceManager } from "./instances/manager.js";
import { ModelDataCache } from "./instances/model-data.js";
import { buildApp } from "./api/server.js";
import { SqliteScalingStore } from "./queue/sqlite/scaling-store.js";
import { autoscalingService } from "./api/aws/autoscaling.js";

export interface Kikitori {
  url: string;
  config: Readonly<Config>;
  service: Service;
  manager: InstanceManager;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Builds everything from the configuration and owns shutdown. The only place that knows the wiring. */
export async function startKikitori(config: Readonly<Config>): Promise<Kikitori> {
  const log = config.log ? (msg: string) => console.error(`[kikitori] ${msg}`) : () => {};
  const state = new SqliteStateStore(join(config.dataDir, "kikitori.db"));
  const objects = new FsObjectStore({ root: join(config.dataDir, "objects") });
  const service = new Service(state, objects, {
    maxInputBytes: config.maxInputBytes,
    maxAttempts: config.maxAttempts,
    defaultBucket: "kikitori",
  });
  await objects.createBucket("kikitori").catch(() => {});
  const manager = new InstanceManager(
    service,
    new ModelDataCache(join(config.dataDir, "model-cache"), objects),
    {
      leaseMs: config.leaseMs,
      heartbeatMs: config.heartbeatMs,
      startupHealthTimeoutMs: config.startupHealthTimeoutMs,
      shutdownGraceMs: config.shutdownGraceMs,
      maxConsecutiveStartFailures: config.maxConsecutiveStartFailures,
      defaultModelFile: () => modelFile(config, config.defaultModel),
      log,
    },
  );
  const scaling = new SqliteScalingStore(state.db);
  const app = await buildApp(service, {
    logRequests: config.log,
    aws: {
      service,
      manager,
      store: objects,
      auth: config.auth,
      services: { "application-autoscaling": autoscalingService(scaling) },
    },
  });
  await manager.start();
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    config,
    service,
    manager,
    app,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await manager.stop();
        await state.close();
      })()),
  };
}
