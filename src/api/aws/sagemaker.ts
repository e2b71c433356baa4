import { KikitoriError } from "../../errors.js";
import { checkImage } from "../../instances/images.js";
import { ENDPOINT_STATUSES } from "../../core/types.js";
import type {
  AsyncInferenceConfig,
  Deployment,
  Endpoint,
  EndpointConfig,
  EndpointStatus,
  Model,
} from "../../core/types.js";
import type { AwsContext, JsonService } from "./context.js";
import { roleNameOf } from "./iam.js";
import {
  awsValidation,
  checkMembers,
  epochSeconds,
  optionalArray,
  optionalBoolean,
  optionalInt,
  optionalObject,
  optionalString,
  page,
  requiredString,
  type JsonInput,
} from "./json-protocol.js";

/**
 * SageMaker's control plane (awsJson1_1, `X-Amz-Target: SageMaker.<Op>`) over Service: models, endpoint
 * configs and endpoints. Members kikitori does not implement are refused by name; `Tags` and a few
 * placement-only members are accepted and ignored (listed per operation).
 */

const arn = (ctx: AwsContext, kind: string, name: string) =>
  `arn:aws:sagemaker:${ctx.region}:${ctx.accountId}:${kind}/${name.toLowerCase()}`;

/** Real SageMaker's wording for a missing resource, with the code boto3's waiters look for. */
async function found<T>(what: string, name: string, get: () => Promise<T>): Promise<T> {
  try {
    return await get();
  } catch (e) {
    if (e instanceof KikitoriError && e.code === "NotFound")
      throw awsValidation(`Could not find ${what} "${name}".`);
    throw e;
  }
}

/** Fails at create time, with images.ts's message, for an image no instance may run (the service's policy). */
async function checkModelImage(ctx: AwsContext, image: string): Promise<void> {
  await (ctx.service.options.checkImage ?? checkImage)(image);
}

type IncludeIn = NonNullable<AsyncInferenceConfig["notification"]>["includeInferenceResponseIn"];

// --- models ---

const CONTAINER_MEMBERS = ["Image", "ModelDataUrl", "Environment", "ContainerHostname", "Mode"];

function container(op: string, c: JsonInput, prefix: string) {
  checkMembers(op, prefix, c, CONTAINER_MEMBERS);
  const mode = optionalString(c, "Mode", prefix);
  if (mode !== undefined && mode !== "SingleModel")
    throw awsValidation(`${op}: ${prefix}Mode ${mode} is not supported by kikitori`);
  const environment = optionalObject(c, "Environment", prefix) as Record<string, string> | undefined;
  return {
    image: requiredString(c, "Image", prefix),
    modelDataUrl: optionalString(c, "ModelDataUrl", prefix),
    environment,
  };
}

async function createModel(input: JsonInput, ctx: AwsContext) {
  checkMembers(
    "CreateModel",
    "",
    input,
    ["ModelName", "PrimaryContainer", "Containers", "ExecutionRoleArn", "Tags"],
    ["EnableNetworkIsolation"],
  );
  const name = requiredString(input, "ModelName");
  const primary = optionalObject(input, "PrimaryContainer");
  const containers = optionalArray(input, "Containers");
  if (primary && containers)
    throw awsValidation("CreateModel: give PrimaryContainer or Containers, not both");
  if (containers && containers.length !== 1)
    throw awsValidation(
      "CreateModel: Containers with more than one container (inference pipelines) is not supported by kikitori",
    );
  const def = primary ?? (containers?.[0] as JsonInput | undefined);
  if (!def) throw awsValidation("CreateModel: PrimaryContainer is required");
  const c = container("CreateModel", def, primary ? "PrimaryContainer." : "Containers[0].");
  await checkModelImage(ctx, c.image);
  // SageMaker's wording and code: the sagemaker SDK reuses the model when it sees them.
  if (await ctx.service.findModel(name))
    throw awsValidation(`Cannot create already existing model "${arn(ctx, "model", name)}".`);
  const role = optionalString(input, "ExecutionRoleArn");
  if (role !== undefined) await checkRole(ctx, role);
  const tags = tagsOf("CreateModel", input);
  const model = await ctx.service.createModel({ name, ...c, executionRoleArn: role });
  await putTags(ctx, arn(ctx, "model", model.name), tags);
  return { ModelArn: arn(ctx, "model", model.name) };
}

function describeModelOf(ctx: AwsContext, m: Model) {
  return {
    ModelName: m.name,
    ModelArn: arn(ctx, "model", m.name),
    PrimaryContainer: {
      Image: m.image,
      Mode: "SingleModel",
      ...(m.modelDataUrl ? { ModelDataUrl: m.modelDataUrl } : {}),
      Environment: m.environment,
    },
    ...(m.executionRoleArn ? { ExecutionRoleArn: m.executionRoleArn } : {}),
    CreationTime: epochSeconds(m.createdAt),
    EnableNetworkIsolation: false,
  };
}

// --- lists ---

const LIST_MEMBERS = ["NameContains", "SortBy", "SortOrder", "MaxResults", "NextToken"];

function sorted<T extends { name: string; createdAt: number }>(
  op: string,
  items: T[],
  input: JsonInput,
): T[] {
  const nameContains = optionalString(input, "NameContains");
  const by = optionalString(input, "SortBy") ?? "CreationTime";
  const order = optionalString(input, "SortOrder") ?? "Descending";
  if (!["Name", "CreationTime"].includes(by))
    throw awsValidation(`${op}: SortBy ${by} is not supported by kikitori`);
  if (!["Ascending", "Descending"].includes(order))
    throw awsValidation(`${op}: SortOrder must be Ascending or Descending`);
  const out = items.filter((i) => !nameContains || i.name.toLowerCase().includes(nameContains.toLowerCase()));
  out.sort((a, b) => (by === "Name" ? a.name.localeCompare(b.name) : a.createdAt - b.createdAt));
  if (order === "Descending") out.reverse();
  return out;
}

// --- endpoint configs ---

const VARIANT_MEMBERS = ["VariantName", "ModelName", "InitialInstanceCount", "InstanceType"];
const VARIANT_IGNORED = [
  "InitialVariantWeight",
  "VolumeSizeInGB",
  "ModelDataDownloadTimeoutInSeconds",
  "ContainerStartupHealthCheckTimeoutInSeconds",
];

function asyncConfigOf(op: string, a: JsonInput): Partial<AsyncInferenceConfig> {
  checkMembers(op, "AsyncInferenceConfig.", a, ["ClientConfig", "OutputConfig"]);
  const client = optionalObject(a, "ClientConfig", "AsyncInferenceConfig.") ?? {};
  checkMembers(op, "AsyncInferenceConfig.ClientConfig.", client, ["MaxConcurrentInvocationsPerInstance"]);
  const out = optionalObject(a, "OutputConfig", "AsyncInferenceConfig.");
  if (!out) throw awsValidation(`${op}: AsyncInferenceConfig.OutputConfig is required`);
  const p = "AsyncInferenceConfig.OutputConfig.";
  checkMembers(op, p, out, ["S3OutputPath", "S3FailurePath", "NotificationConfig"]);
  const n = optionalObject(out, "NotificationConfig", p);
  if (n)
    checkMembers(op, `${p}NotificationConfig.`, n, [
      "SuccessTopic",
      "ErrorTopic",
      "IncludeInferenceResponseIn",
    ]);
  const include = n ? optionalArray(n, "IncludeInferenceResponseIn", `${p}NotificationConfig.`) : undefined;
  for (const v of include ?? []) {
    if (v !== "SUCCESS_NOTIFICATION_TOPIC" && v !== "ERROR_NOTIFICATION_TOPIC")
      throw awsValidation(
        `${op}: ${p}NotificationConfig.IncludeInferenceResponseIn: unknown value ${JSON.stringify(v)}`,
      );
  }
  return {
    outputPath: optionalString(out, "S3OutputPath", p),
    failurePath: optionalString(out, "S3FailurePath", p),
    maxConcurrentInvocationsPerInstance: optionalInt(
      client,
      "MaxConcurrentInvocationsPerInstance",
      "AsyncInferenceConfig.ClientConfig.",
    ),
    notification: n
      ? {
          successTopic: optionalString(n, "SuccessTopic"),
          errorTopic: optionalString(n, "ErrorTopic"),
          includeInferenceResponseIn: include as IncludeIn,
        }
      : undefined,
  };
}

function asyncConfigView(a: AsyncInferenceConfig) {
  const n = a.notification;
  return {
    ClientConfig: { MaxConcurrentInvocationsPerInstance: a.maxConcurrentInvocationsPerInstance },
    OutputConfig: {
      S3OutputPath: a.outputPath,
      ...(a.failurePath ? { S3FailurePath: a.failurePath } : {}),
      ...(n
        ? {
            NotificationConfig: {
              ...(n.successTopic ? { SuccessTopic: n.successTopic } : {}),
              ...(n.errorTopic ? { ErrorTopic: n.errorTopic } : {}),
              ...(n.includeInferenceResponseIn
                ? { IncludeInferenceResponseIn: n.includeInferenceResponseIn }
                : {}),
            },
          }
        : {}),
    },
  };
}

async function createEndpointConfig(input: JsonInput, ctx: AwsContext) {
  const op = "CreateEndpointConfig";
  checkMembers(op, "", input, ["EndpointConfigName", "ProductionVariants", "AsyncInferenceConfig", "Tags"]);
  const name = requiredString(input, "EndpointConfigName");
  if (await ctx.service.findEndpointConfig(name))
    throw awsValidation(
      `Cannot create already existing endpoint configuration "${arn(ctx, "endpoint-config", name)}".`,
    );
  const tags = tagsOf(op, input);
  const variants = optionalArray(input, "ProductionVariants");
  if (!variants) throw awsValidation(`${op}: ProductionVariants is required`);
  const parsed = variants.map((v, i) => {
    const p = `ProductionVariants[${i}].`;
    if (typeof v !== "object" || v === null)
      throw awsValidation(`${op}: ${p.slice(0, -1)} must be an object`);
    const vi = v as JsonInput;
    checkMembers(op, p, vi, VARIANT_MEMBERS, VARIANT_IGNORED);
    return {
      variantName: requiredString(vi, "VariantName", p),
      modelName: requiredString(vi, "ModelName", p),
      initialInstanceCount: optionalInt(vi, "InitialInstanceCount", p),
      instanceType: optionalString(vi, "InstanceType", p),
    };
  });
  const a = optionalObject(input, "AsyncInferenceConfig");
  const config = await ctx.service.createEndpointConfig({
    name,
    variants: parsed,
    asyncConfig: a ? asyncConfigOf(op, a) : undefined,
  });
  await putTags(ctx, arn(ctx, "endpoint-config", config.name), tags);
  return { EndpointConfigArn: arn(ctx, "endpoint-config", config.name) };
}

function describeConfigOf(ctx: AwsContext, c: EndpointConfig) {
  return {
    EndpointConfigName: c.name,
    EndpointConfigArn: arn(ctx, "endpoint-config", c.name),
    ProductionVariants: c.variants.map((v) => ({
      VariantName: v.variantName,
      ModelName: v.modelName,
      InitialInstanceCount: v.initialInstanceCount,
      InstanceType: v.instanceType,
      InitialVariantWeight: 1,
    })),
    ...(c.asyncConfig ? { AsyncInferenceConfig: asyncConfigView(c.asyncConfig) } : {}),
    CreationTime: epochSeconds(c.createdAt),
  };
}

// --- endpoints ---

/** Every model of the config must be runnable before an endpoint is created from it. */
async function checkConfigImages(ctx: AwsContext, configName: string): Promise<void> {
  const config = await found("endpoint configuration", configName, () =>
    ctx.service.getEndpointConfig(configName),
  );
  for (const v of config.variants)
    await checkModelImage(ctx, (await ctx.service.getModel(v.modelName)).image);
}

async function createEndpoint(input: JsonInput, ctx: AwsContext) {
  checkMembers("CreateEndpoint", "", input, ["EndpointName", "EndpointConfigName", "Tags"]);
  const name = requiredString(input, "EndpointName");
  const configName = requiredString(input, "EndpointConfigName");
  if (await ctx.service.findEndpoint(name))
    throw awsValidation(`Cannot create already existing endpoint "${arn(ctx, "endpoint", name)}".`);
  await checkConfigImages(ctx, configName);
  const tags = tagsOf("CreateEndpoint", input);
  const e = await ctx.service.createEndpoint({ name, configName });
  await putTags(ctx, arn(ctx, "endpoint", e.name), tags);
  return { EndpointArn: arn(ctx, "endpoint", e.name) };
}

async function describeEndpoint(input: JsonInput, ctx: AwsContext) {
  checkMembers("DescribeEndpoint", "", input, ["EndpointName"]);
  const name = requiredString(input, "EndpointName");
  const e = await found("endpoint", name, () => ctx.service.getEndpoint(name));
  // What the endpoint runs is its own copy: the config may have been deleted since.
  const config = e.deployment?.config;
  const variants = async (d: Deployment) => {
    const counts = await ctx.service.variantCounts(name, d.id);
    return d.config.variants.map((v) => {
      const c = counts.get(v.variantName);
      return {
        VariantName: v.variantName,
        CurrentWeight: 1,
        DesiredWeight: 1,
        CurrentInstanceCount: c?.current ?? 0,
        DesiredInstanceCount: c?.desired ?? v.initialInstanceCount,
      };
    });
  };
  return {
    EndpointName: e.name,
    EndpointArn: arn(ctx, "endpoint", e.name),
    EndpointConfigName: e.configName,
    ProductionVariants: e.deployment ? await variants(e.deployment) : [],
    ...(e.pending
      ? {
          PendingDeploymentSummary: {
            EndpointConfigName: e.pending.config.name,
            ProductionVariants: await variants(e.pending),
            StartTime: epochSeconds(e.pending.createdAt),
          },
        }
      : {}),
    EndpointStatus: e.status,
    ...(e.failureReason ? { FailureReason: e.failureReason } : {}),
    CreationTime: epochSeconds(e.createdAt),
    LastModifiedTime: epochSeconds(e.updatedAt),
    ...(config?.asyncConfig ? { AsyncInferenceConfig: asyncConfigView(config.asyncConfig) } : {}),
  };
}

const VARIANT_PROPERTIES = ["DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig"];

async function updateEndpoint(input: JsonInput, ctx: AwsContext) {
  const op = "UpdateEndpoint";
  checkMembers(op, "", input, [
    "EndpointName",
    "EndpointConfigName",
    "RetainAllVariantProperties",
    "ExcludeRetainedVariantProperties",
  ]);
  const name = requiredString(input, "EndpointName");
  const configName = requiredString(input, "EndpointConfigName");
  const retain = optionalBoolean(input, "RetainAllVariantProperties") ?? false;
  const excluded = (optionalArray(input, "ExcludeRetainedVariantProperties") ?? []).map((p, i) => {
    const o = (p ?? {}) as JsonInput;
    const prefix = `ExcludeRetainedVariantProperties[${i}].`;
    checkMembers(op, prefix, o, ["VariantPropertyType"]);
    const type = requiredString(o, "VariantPropertyType", prefix);
    if (!VARIANT_PROPERTIES.includes(type))
      throw awsValidation(
        `${op}: ${prefix}VariantPropertyType must be one of ${VARIANT_PROPERTIES.join(", ")}`,
      );
    return type;
  });
  const e = await found("endpoint", name, () => ctx.service.getEndpoint(name));
  if (e.status !== "InService" && e.status !== "Failed")
    throw awsValidation(`Cannot update in-progress endpoint "${arn(ctx, "endpoint", name)}".`);
  await checkConfigImages(ctx, configName);
  // Of the retained properties only the instance count means something here (weights have no effect).
  const counts = new Map<string, number>();
  if (retain && !excluded.includes("DesiredInstanceCount"))
    for (const [variant, c] of await ctx.service.variantCounts(name)) counts.set(variant, c.desired);
  await ctx.service.updateEndpoint(name, configName, counts);
  return { EndpointArn: arn(ctx, "endpoint", name) };
}

function endpointSummary(ctx: AwsContext, e: Endpoint) {
  return {
    EndpointName: e.name,
    EndpointArn: arn(ctx, "endpoint", e.name),
    CreationTime: epochSeconds(e.createdAt),
    LastModifiedTime: epochSeconds(e.updatedAt),
    EndpointStatus: e.status,
  };
}

async function listEndpoints(input: JsonInput, ctx: AwsContext) {
  checkMembers("ListEndpoints", "", input, [...LIST_MEMBERS, "StatusEquals"]);
  const status = optionalString(input, "StatusEquals");
  if (status !== undefined && !ENDPOINT_STATUSES.includes(status as EndpointStatus))
    throw awsValidation(`ListEndpoints: StatusEquals must be one of ${ENDPOINT_STATUSES.join(", ")}`);
  const all = sorted("ListEndpoints", await ctx.service.listEndpoints(), input).filter(
    (e) => !status || e.status === status,
  );
  const { items, nextToken } = page(all, input);
  return {
    Endpoints: items.map((e) => endpointSummary(ctx, e)),
    ...(nextToken ? { NextToken: nextToken } : {}),
  };
}

function nameOnly(op: string, field: string) {
  return (input: JsonInput) => {
    checkMembers(op, "", input, [field]);
    return requiredString(input, field);
  };
}

// --- execution roles ---

/** As SageMaker: the execution role must exist (kikitori checks the name; it enforces no policy). */
async function checkRole(ctx: AwsContext, roleArn: string): Promise<void> {
  const name = roleNameOf(roleArn);
  if (!name) throw awsValidation(`ExecutionRoleArn ${roleArn} is not an IAM role ARN`);
  if (!(await ctx.roles.get(ctx, name)))
    throw awsValidation(
      `Could not assume role ${roleArn}. Please ensure that the role exists and allows principal 'sagemaker.amazonaws.com' to assume the role.`,
    );
}

// --- tags ---

type Tag = { Key: string; Value: string };

function tagsOf(op: string, input: JsonInput, field = "Tags"): Tag[] {
  const list = optionalArray(input, field) ?? [];
  if (list.length > 50) throw awsValidation(`${op}: at most 50 ${field}`);
  return list.map((t, i) => {
    const o = (t ?? {}) as JsonInput;
    const key = requiredString(o, "Key", `${field}[${i}].`);
    if (key.length > 128) throw awsValidation(`${op}: ${field}[${i}].Key is longer than 128 characters`);
    const value = optionalString(o, "Value", `${field}[${i}].`) ?? "";
    if (value.length > 256) throw awsValidation(`${op}: ${field}[${i}].Value is longer than 256 characters`);
    return { Key: key, Value: value };
  });
}

async function tagsAt(ctx: AwsContext, resourceArn: string): Promise<Tag[]> {
  const r = await ctx.resources.get("tags", resourceArn);
  return r ? (JSON.parse(r.body) as Tag[]) : [];
}

/** Adds or replaces tags by key. */
async function putTags(ctx: AwsContext, resourceArn: string, tags: Tag[]): Promise<Tag[]> {
  if (tags.length === 0) return tagsAt(ctx, resourceArn);
  const byKey = new Map((await tagsAt(ctx, resourceArn)).map((t) => [t.Key, t]));
  for (const t of tags) byKey.set(t.Key, t);
  if (byKey.size > 50) throw awsValidation(`a resource may have at most 50 tags (${resourceArn})`);
  const all = [...byKey.values()];
  await ctx.resources.put("tags", resourceArn, JSON.stringify(all), Date.now());
  return all;
}

/** The resource an ARN names must exist (a model, an endpoint configuration or an endpoint). */
async function taggable(ctx: AwsContext, input: JsonInput): Promise<string> {
  const resourceArn = requiredString(input, "ResourceArn");
  const m = /^arn:aws[a-z-]*:sagemaker:[^:]*:\d{12}:(model|endpoint-config|endpoint)\/(.+)$/.exec(
    resourceArn,
  );
  if (!m) throw awsValidation(`ResourceArn ${resourceArn} is not a resource kikitori keeps`);
  const [, kind, lower] = m;
  const list =
    kind === "model"
      ? await ctx.service.listModels()
      : kind === "endpoint-config"
        ? await ctx.service.listEndpointConfigs()
        : await ctx.service.listEndpoints();
  const item = list.find((x) => x.name.toLowerCase() === lower);
  if (!item) throw awsValidation(`Could not find resource "${resourceArn}".`);
  // Tags live under the canonical ARN, whatever the case the caller wrote.
  return arn(ctx, kind!, item.name);
}

async function addTags(input: JsonInput, ctx: AwsContext) {
  checkMembers("AddTags", "", input, ["ResourceArn", "Tags"]);
  const resourceArn = await taggable(ctx, input);
  const tags = tagsOf("AddTags", input);
  if (tags.length === 0) throw awsValidation("AddTags: Tags is required");
  return { Tags: await putTags(ctx, resourceArn, tags) };
}

async function listTags(input: JsonInput, ctx: AwsContext) {
  checkMembers("ListTags", "", input, ["ResourceArn", "MaxResults", "NextToken"]);
  const { items, nextToken } = page(await tagsAt(ctx, await taggable(ctx, input)), input, 50);
  return { Tags: items, ...(nextToken ? { NextToken: nextToken } : {}) };
}

async function deleteTags(input: JsonInput, ctx: AwsContext) {
  checkMembers("DeleteTags", "", input, ["ResourceArn", "TagKeys"]);
  const resourceArn = await taggable(ctx, input);
  const keys = optionalArray(input, "TagKeys");
  if (!keys?.length || keys.some((k) => typeof k !== "string"))
    throw awsValidation("DeleteTags: TagKeys is required (a list of keys)");
  const left = (await tagsAt(ctx, resourceArn)).filter((t) => !keys.includes(t.Key));
  await ctx.resources.put("tags", resourceArn, JSON.stringify(left), Date.now());
  return {};
}

// --- capacity ---

/**
 * Sets each named variant's desired instance count at once (as the autoscaler does; a registered scalable
 * target's policies may change it again). kikitori's variants share the endpoint's one queue, so
 * DesiredWeight is accepted and has no effect.
 */
async function updateWeightsAndCapacities(input: JsonInput, ctx: AwsContext) {
  const op = "UpdateEndpointWeightsAndCapacities";
  checkMembers(op, "", input, ["EndpointName", "DesiredWeightsAndCapacities"]);
  const name = requiredString(input, "EndpointName");
  const e = await found("endpoint", name, () => ctx.service.getEndpoint(name));
  const config = e.deployment?.config;
  if (e.status !== "InService" || !config)
    throw awsValidation(`Cannot update in-progress endpoint "${arn(ctx, "endpoint", name)}".`);
  const wanted = optionalArray(input, "DesiredWeightsAndCapacities");
  if (!wanted?.length) throw awsValidation(`${op}: DesiredWeightsAndCapacities is required`);
  const changes = wanted.map((w, i) => {
    const p = `DesiredWeightsAndCapacities[${i}].`;
    const o = (w ?? {}) as JsonInput;
    checkMembers(
      op,
      p,
      o,
      ["VariantName", "DesiredInstanceCount"],
      ["DesiredWeight", "ServerlessUpdateConfig"],
    );
    const variant = requiredString(o, "VariantName", p);
    if (!config.variants.some((v) => v.variantName === variant))
      throw awsValidation(`The variant(s) "[${variant}]" is/are not present in the endpoint configuration.`);
    const count = optionalInt(o, "DesiredInstanceCount", p);
    if (count !== undefined && (count < 0 || count > 100))
      throw awsValidation(`${op}: ${p}DesiredInstanceCount must be from 0 to 100`);
    return { variant, count };
  });
  for (const c of changes)
    if (c.count !== undefined) await ctx.service.setDesiredCount(name, c.variant, c.count);
  return { EndpointArn: arn(ctx, "endpoint", name) };
}

export function sagemakerService(): JsonService {
  const modelName = nameOnly("DescribeModel", "ModelName");
  return {
    protocol: "json",
    targetPrefix: "SageMaker",
    // SageMaker's control plane has no ResourceNotFound for these resources: it answers ValidationException.
    errorNames: {
      NotFound: "ValidationException",
      AlreadyExists: "ValidationException",
      Conflict: "ValidationException",
      ValidationError: "ValidationException",
    },
    ops: {
      CreateModel: createModel,
      DescribeModel: async (input, ctx) => {
        const name = modelName(input);
        return describeModelOf(ctx, await found("model", name, () => ctx.service.getModel(name)));
      },
      DeleteModel: async (input, ctx) => {
        const name = nameOnly("DeleteModel", "ModelName")(input);
        await found("model", name, () => ctx.service.deleteModel(name));
        await ctx.resources.delete("tags", arn(ctx, "model", name));
        return {};
      },
      ListModels: async (input, ctx) => {
        checkMembers("ListModels", "", input, LIST_MEMBERS);
        const { items, nextToken } = page(sorted("ListModels", await ctx.service.listModels(), input), input);
        return {
          Models: items.map((m) => ({
            ModelName: m.name,
            ModelArn: arn(ctx, "model", m.name),
            CreationTime: epochSeconds(m.createdAt),
          })),
          ...(nextToken ? { NextToken: nextToken } : {}),
        };
      },
      CreateEndpointConfig: createEndpointConfig,
      DescribeEndpointConfig: async (input, ctx) => {
        const name = nameOnly("DescribeEndpointConfig", "EndpointConfigName")(input);
        return describeConfigOf(
          ctx,
          await found("endpoint configuration", name, () => ctx.service.getEndpointConfig(name)),
        );
      },
      DeleteEndpointConfig: async (input, ctx) => {
        const name = nameOnly("DeleteEndpointConfig", "EndpointConfigName")(input);
        await found("endpoint configuration", name, () => ctx.service.deleteEndpointConfig(name));
        await ctx.resources.delete("tags", arn(ctx, "endpoint-config", name));
        return {};
      },
      ListEndpointConfigs: async (input, ctx) => {
        checkMembers("ListEndpointConfigs", "", input, LIST_MEMBERS);
        const all = sorted("ListEndpointConfigs", await ctx.service.listEndpointConfigs(), input);
        const { items, nextToken } = page(all, input);
        return {
          EndpointConfigs: items.map((c) => ({
            EndpointConfigName: c.name,
            EndpointConfigArn: arn(ctx, "endpoint-config", c.name),
            CreationTime: epochSeconds(c.createdAt),
          })),
          ...(nextToken ? { NextToken: nextToken } : {}),
        };
      },
      CreateEndpoint: createEndpoint,
      DescribeEndpoint: describeEndpoint,
      UpdateEndpoint: updateEndpoint,
      DeleteEndpoint: async (input, ctx) => {
        const name = nameOnly("DeleteEndpoint", "EndpointName")(input);
        await found("endpoint", name, () => ctx.service.deleteEndpoint(name));
        await ctx.resources.delete("tags", arn(ctx, "endpoint", name));
        return {};
      },
      ListEndpoints: listEndpoints,
      UpdateEndpointWeightsAndCapacities: updateWeightsAndCapacities,
      AddTags: addTags,
      ListTags: listTags,
      DeleteTags: deleteTags,
    },
  };
}
