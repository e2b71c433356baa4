import { join } from "node:path";
import { networkInterfaces } from "node:os";
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
import { Placer } from "./cluster/placer.js";
import { HostHeartbeat, ggmlFiles } from "./cluster/host.js";
import { startWorkerListener, type WorkerListener } from "./cluster/relay.js";

export interface Kikitori {
  url: string;
  config: Readonly<Config>;
  /** The auth mode in force (`auto` resolved). */
  authMode: "open" | "keys";
  keys: KeyStore;
  service: Service;
  /** This process's instances (worker role; idle in an API-only process). */
  manager: InstanceManager;
  autoscaler: Autoscaler;
  metrics: Metrics;
  /** Whether this process runs the cluster-wide loops (autoscaler, placement, sweeper, outbox dispatch). */
  leader: Leader;
  /** The front doors (API role); a worker-only process has none. */
  app?: FastifyInstance;
  /** This process as a worker host of the cluster (worker role). */
  host?: HostHeartbeat;
  close(): Promise<void>;
}

/**
 * Builds everything from the configuration and owns shutdown. The only place that knows the wiring.
 * Roles (config.role): `api` serves the front doors and, while it leads, runs the cluster-wide loops;
 * `worker` registers this process as a host and runs the instances the leader places on it; `all` is both.
 */
export async function startKikitori(config: Readonly<Config>): Promise<Kikitori> {
  const log = config.log ? (msg: string) => console.error(`[kikitori] ${msg}`) : () => {};
  const isApi = config.role !== "worker";
  const isWorker = config.role !== "api";
  const backends = await openBackends(config);
  const { objects, keys } = backends;
  // auto: keys as soon as there is any credential to check; open (loopback only) when there is none.
  const mode =
    config.auth.mode !== "auto"
      ? config.auth.mode
      : config.auth.credentials.length > 0 || (await keys.countActiveKeys()) > 0
        ? "keys"
        : "open";
  // A worker serves no API (its listener takes /health and the token-checked relay only).
  if (mode === "open" && isApi) checkOpenListener(config);
  const service = new Service(backends.state, objects, {
    maxInputBytes: config.maxInputBytes,
    maxAttempts: config.maxAttempts,
    maxJobFiles: config.maxJobFiles,
    defaultBucket: config.defaultBucket,
    checkWebhook: (w) => checkWebhook(w, config.notify.egress),
    checkImage: (image) => checkImage(image, config.localImages),
  });
  const notifier = createNotifier(service, backends.notify, config.notify, log);
  await objects.createBucket(config.defaultBucket).catch(() => {});
  const modelData = new ModelDataCache(join(config.dataDir, "model-cache"), objects);

  const host = isWorker
    ? new HostHeartbeat(service, {
        slots: config.instanceSlots,
        gpus: config.gpus,
        heartbeatMs: config.hostHeartbeatMs,
        serves: config.serves,
        models: async () => [...(await modelData.cachedUrls()), ...(await ggmlFiles(config.modelsDir))],
        log,
      })
    : undefined;
  const manager = new InstanceManager(service, modelData, {
    leaseMs: config.leaseMs,
    heartbeatMs: config.heartbeatMs,
    startupHealthTimeoutMs: config.startupHealthTimeoutMs,
    shutdownGraceMs: config.shutdownGraceMs,
    maxConsecutiveStartFailures: config.maxConsecutiveStartFailures,
    defaultModelFile: () => modelFile(config, config.defaultModel),
    hostId: host?.id ?? "",
    relay: () => host?.address,
    localImages: config.localImages,
    log,
  });
  // A worker-only process listens for probes and the relay of synchronous invocations (src/cluster/relay.ts).
  let listener: WorkerListener | undefined;
  if (host && !isApi) {
    listener = await startWorkerListener({
      host: config.host,
      port: config.port,
      token: host.token,
      find: (id) => manager.find(id),
      health: () => ({ role: "worker", host: host.id, instances: manager.count }),
    });
    host.address = advertised(config, listener.url);
  }
  const metrics = new Metrics(service, { log });
  const { region, accountId } = config;
  const alarms = new Alarms(backends.aws, metrics, { region, accountId, log });
  const autoscaler = new Autoscaler(service, backends.scaling, metrics, { region, accountId, log }, alarms);
  const placer = new Placer(service, { intervalMs: 1000, hostTtlMs: config.hostTtlMs, log });
  // Wake-ups from every process: work to lease, an outbox to dispatch, placements to converge on.
  backends.coordinator.onWake("queued", (endpoint) => manager.wake(endpoint));
  backends.coordinator.onWake("finished", () => notifier.dispatcher.wake());
  backends.coordinator.onWake("placement", (hostId) => {
    if (hostId === "") placer.wake();
    else if (hostId === host?.id) manager.placementsChanged();
  });
  const leader = new Leader(backends.coordinator, { pollMs: config.leaderPollMs });
  leader.on("error", (e) => log(`leader: ${e.message}`));
  leader.on("leader:acquired", () => log(`this process leads the cluster-wide loops (${backends.database})`));
  leader.on("leader:lost", () => log("this process no longer leads the cluster-wide loops"));
  leader.register(new Sweeper(service, { intervalMs: 1000, log }));
  leader.register(placer);
  leader.register(autoscaler);
  leader.register(notifier.dispatcher);

  let app: FastifyInstance | undefined;
  let url = listener?.url ?? "";
  if (isApi) {
    app = await buildApp(service, {
      logRequests: config.log,
      auth: {
        mode,
        keys,
        aws: createAwsAuth({
          mode: mode === "open" ? "open" : "sigv4",
          credentials: config.auth.credentials,
        }),
        sigv4Scopes: new Map(config.auth.credentials.map((c) => [c.accessKeyId, c.scope])),
        processToken: config.auth.processToken,
        bodyTimeoutMs: config.auth.bodyTimeoutMs,
        cookieSecure: config.auth.cookieSecure,
      },
      openai: { defaultEndpoint: "whisper", maxBytes: config.maxInputBytes },
      aws: {
        service,
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
  }
  if (host) {
    await host.start();
    await manager.start();
  }
  if (app) {
    metrics.start();
    await app.listen({ host: config.host, port: config.port });
    const addr = app.server.address();
    const port = typeof addr === "object" && addr ? addr.port : config.port;
    const h = config.host.includes(":") ? `[${config.host}]` : config.host;
    url = `http://${h}:${port}`;
    notifier.setBaseUrl(url);
    // Only API processes lead: workers may all be scaled to zero, and the autoscaler must run to wake them.
    await leader.start();
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    config,
    authMode: mode,
    keys,
    service,
    manager,
    autoscaler,
    metrics,
    leader,
    app,
    host,
    close: () =>
      (closing ??= (async () => {
        try {
          await app?.close();
          await leader.stop();
          metrics.stop();
          // A worker that stops (scale-in) takes no new instances, lets in-flight work finish within the
          // grace period (the pod's termination grace covers it), hands back the rest and leaves the cluster.
          await host?.drain();
          await manager.stop(isApi ? undefined : config.shutdownGraceMs);
          await host?.stop();
          await listener?.close();
        } finally {
          // Even when a step failed (the database went away mid-drain): no pool or session left open.
          await backends.close();
        }
      })()),
  };
}

/** The URL other processes reach this worker at: KIKITORI_ADVERTISE_URL, else its listener's address. */
function advertised(config: Readonly<Config>, listening: string): string {
  if (config.advertiseUrl) return config.advertiseUrl.replace(/\/+$/, "");
  const u = new URL(listening);
  if (u.hostname !== "0.0.0.0" && u.hostname !== "[::]") return listening;
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal);
  return `http://${external?.address ?? "127.0.0.1"}:${u.port}`;
}
