import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { checkOpenListener, type Config, modelFile } from "./config.js";
import { openBackends } from "./backends.js";
import type { KeyStore } from "./queue/key-store.js";
import { Service } from "./core/service.js";
import { Sweeper } from "./core/sweeper.js";
import { Leader } from "./queue/leader.js";
import { InstanceManager } from "./instances/manager.js";
import { ModelDataCache } from "./instances/model-data.js";
import { buildApp } from "./api/server.js";
import { checkWebhook, createNotifier } from "./notify/index.js";
import { snsService } from "./api/aws/sns.js";
import { registerEvents } from "./api/rest/events.js";
import { autoscalingService } from "./api/aws/autoscaling.js";
import { Autoscaler } from "./autoscale/autoscaler.js";
import { registerScalingRoutes } from "./autoscale/routes.js";
import { Metrics } from "./metrics/metrics.js";
import { registerMetricsRoutes } from "./metrics/routes.js";
import { registerEndpointEvents } from "./api/rest/endpoint-events.js";
import { registerModelCache } from "./api/rest/model-cache.js";
import { Alarms } from "./autoscale/alarms.js";
import { cloudwatchService } from "./api/aws/cloudwatch.js";
import { createAwsAuth } from "./api/aws/sigv4.js";
import { checkImage } from "./instances/images.js";

export interface Kikitori {
  url: string;
  config: Readonly<Config>;
  /** The auth mode in force (`auto` resolved). */
  authMode: "open" | "keys";
  keys: KeyStore;
  service: Service;
  manager: InstanceManager;
  autoscaler: Autoscaler;
  metrics: Metrics;
  /** Whether this process runs the cluster-wide loops (autoscaler, sweeper, outbox dispatch). */
  leader: Leader;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Builds everything from the configuration and owns shutdown. The only place that knows the wiring. */
export async function startKikitori(config: Readonly<Config>): Promise<Kikitori> {
  const log = config.log ? (msg: string) => console.error(`[kikitori] ${msg}`) : () => {};
  const backends = await openBackends(config);
  const { objects, keys } = backends;
  // auto: keys as soon as there is any credential to check; open (loopback only) when there is none.
  const mode =
    config.auth.mode !== "auto"
      ? config.auth.mode
      : config.auth.credentials.length > 0 || (await keys.countActiveKeys()) > 0
        ? "keys"
        : "open";
  if (mode === "open") checkOpenListener(config);
  const service = new Service(backends.state, objects, {
    maxInputBytes: config.maxInputBytes,
    maxAttempts: config.maxAttempts,
    defaultBucket: config.defaultBucket,
    checkWebhook: (w) => checkWebhook(w, config.notify.egress),
    checkImage: (image) => checkImage(image, config.localImages),
  });
  const notifier = createNotifier(service, backends.notify, config.notify, log);
  await objects.createBucket(config.defaultBucket).catch(() => {});
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
  const metrics = new Metrics(service, manager, { log });
  const { region, accountId } = config;
  const alarms = new Alarms(backends.aws, metrics, { region, accountId, log });
  const autoscaler = new Autoscaler(
    service,
    backends.scaling,
    manager,
    metrics,
    { region, accountId, log },
    alarms,
  );
  // Work committed by any process wakes this one's instances; a finished invocation wakes the outbox.
  backends.coordinator.onWake("queued", (endpoint) => manager.wake(endpoint));
  backends.coordinator.onWake("finished", () => notifier.dispatcher.wake());
  const leader = new Leader(backends.coordinator, { pollMs: config.leaderPollMs });
  leader.on("error", (e) => log(`leader: ${e.message}`));
  leader.on("leader:acquired", () => log(`this process leads the cluster-wide loops (${backends.database})`));
  leader.on("leader:lost", () => log("this process no longer leads the cluster-wide loops"));
  leader.register(new Sweeper(service, { intervalMs: 1000, log }));
  leader.register(autoscaler);
  leader.register(notifier.dispatcher);
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
      resources: backends.aws,
      region,
      accountId,
      services: {
        "application-autoscaling": autoscalingService(autoscaler),
        sns: snsService(notifier.topics, accountId),
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
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  notifier.setBaseUrl(`http://${host}:${port}`);
  await leader.start();
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
    leader,
    app,
    close: () =>
      (closing ??= (async () => {
        try {
          await app.close();
          await leader.stop();
          metrics.stop();
          await manager.stop();
        } finally {
          // Even when a step failed (the database went away mid-drain): no pool or session left open.
          await backends.close();
        }
      })()),
  };
}
