import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { checkOpenListener, type Config, modelFile } from "./config.js";
import { Service } from "./core/service.js";
import { SqliteStateStore } from "./queue/sqlite/store.js";
import { FsObjectStore } from "./storage/index.js";
import { InstanceManager } from "./instances/manager.js";
import { ModelDataCache } from "./instances/model-data.js";
import { buildApp } from "./api/server.js";
import { checkWebhook, createNotifier } from "./notify/index.js";
import { snsService } from "./api/aws/sns.js";
import { registerEvents } from "./api/rest/events.js";
import { SqliteScalingStore } from "./queue/sqlite/scaling-store.js";
import { autoscalingService } from "./api/aws/autoscaling.js";
import { Autoscaler } from "./autoscale/autoscaler.js";
import { registerScalingRoutes } from "./autoscale/routes.js";
import { Metrics } from "./metrics/metrics.js";
import { registerMetricsRoutes } from "./metrics/routes.js";
import { registerEndpointEvents } from "./api/rest/endpoint-events.js";
import { registerModelCache } from "./api/rest/model-cache.js";
import { SqliteAwsStore } from "./queue/sqlite/aws-store.js";
import { Alarms } from "./autoscale/alarms.js";
import { cloudwatchService } from "./api/aws/cloudwatch.js";
import { SqliteKeyStore } from "./queue/sqlite/key-store.js";
import { createAwsAuth } from "./api/aws/sigv4.js";
import { checkImage } from "./instances/images.js";

export interface Kikitori {
  url: string;
  config: Readonly<Config>;
  /** The auth mode in force (`auto` resolved). */
  authMode: "open" | "keys";
  keys: SqliteKeyStore;
  service: Service;
  manager: InstanceManager;
  autoscaler: Autoscaler;
  metrics: Metrics;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Builds everything from the configuration and owns shutdown. The only place that knows the wiring. */
export async function startKikitori(config: Readonly<Config>): Promise<Kikitori> {
  const log = config.log ? (msg: string) => console.error(`[kikitori] ${msg}`) : () => {};
  const state = new SqliteStateStore(join(config.dataDir, "kikitori.db"));
  const objects = new FsObjectStore({ root: join(config.dataDir, "objects") });
  const keys = new SqliteKeyStore(state.db);
  // auto: keys as soon as there is any credential to check; open (loopback only) when there is none.
  const mode =
    config.auth.mode !== "auto"
      ? config.auth.mode
      : config.auth.credentials.length > 0 || (await keys.countActiveKeys()) > 0
        ? "keys"
        : "open";
  if (mode === "open") checkOpenListener(config);
  const service = new Service(state, objects, {
    maxInputBytes: config.maxInputBytes,
    maxAttempts: config.maxAttempts,
    defaultBucket: "kikitori",
    checkWebhook: (w) => checkWebhook(w, config.notify.egress),
    checkImage: (image) => checkImage(image, config.localImages),
  });
  const notifier = createNotifier(service, state.db, config.notify, log);
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
      localImages: config.localImages,
      log,
    },
  );
  const scaling = new SqliteScalingStore(state.db);
  const metrics = new Metrics(service, manager, { log });
  const awsStore = new SqliteAwsStore(state.db);
  const { region, accountId } = config.notify;
  const alarms = new Alarms(awsStore, metrics, { region, accountId, log });
  const autoscaler = new Autoscaler(service, scaling, manager, metrics, { log, region, accountId }, alarms);
  const app = await buildApp(service, {
    logRequests: config.log,
    auth: {
      mode,
      keys,
      aws: createAwsAuth({ mode: mode === "open" ? "open" : "sigv4", credentials: config.auth.credentials }),
      sigv4Scopes: new Map(config.auth.credentials.map((c) => [c.accessKeyId, c.scope])),
      processToken: config.auth.processToken,
      bodyTimeoutMs: config.auth.bodyTimeoutMs,
      cookieSecure: config.auth.cookieSecure,
    },
    openai: { defaultEndpoint: "whisper", maxBytes: config.maxInputBytes },
    aws: {
      service,
      manager,
      store: objects,
      resources: awsStore,
      services: {
        "application-autoscaling": autoscalingService(autoscaler),
        sns: snsService(notifier.topics, config.notify.accountId),
        monitoring: cloudwatchService(alarms, metrics),
      },
    },
  });
  registerMetricsRoutes(app, metrics, { prometheusAuth: config.auth.metrics });
  registerScalingRoutes(app, autoscaler);
  registerEndpointEvents(app, { service, metrics, autoscaler });
  registerModelCache(app, { dir: config.modelsDir, defaultModel: config.defaultModel });
  await registerEvents(app, service, notifier);
  await manager.start();
  metrics.start();
  autoscaler.start();
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  notifier.start(`http://${host}:${port}`);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    config,
    authMode: mode,
    keys,
    service,
    manager,
    autoscaler,
    metrics,
    app,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await autoscaler.stop();
        metrics.stop();
        await manager.stop();
        await notifier.stop();
        await state.close();
      })()),
  };
}
