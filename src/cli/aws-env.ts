import { mkdir, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { loadConfig } from "../config.js";

/**
 * `kikitori aws-env`: the environment that points AWS tools at kikitori, as shell `export` lines, and the
 * sagemaker Python SDK's config file with a default bucket. The SDK finds its default bucket through STS
 * at AWS's own address (it ignores AWS_ENDPOINT_URL there); with `DefaultS3Bucket` in the file that
 * SAGEMAKER_USER_CONFIG_OVERRIDE names it never asks, so a notebook runs unmodified.
 *   eval "$(kikitori aws-env)"
 */

export interface AwsEnvOptions {
  url: string;
  region: string;
  bucket?: string;
  accountId: string;
  configFile: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The SDK's own default-bucket name, so scripts that spell it out find the same bucket. */
export const defaultBucketName = (region: string, accountId: string) => `sagemaker-${region}-${accountId}`;

export function sagemakerConfigYaml(bucket: string): string {
  return [
    "# Written by `kikitori aws-env`: the sagemaker Python SDK's defaults for a kikitori server.",
    "SchemaVersion: '1.0'",
    "SageMaker:",
    "  PythonSDK:",
    "    Modules:",
    "      Session:",
    `        DefaultS3Bucket: '${bucket}'`,
    "",
  ].join("\n");
}

const quote = (v: string) => `'${v.replace(/'/g, "'\\''")}'`;

/** Writes the SDK config file and returns the `export` lines. */
export async function awsEnv(o: AwsEnvOptions): Promise<string> {
  const bucket = o.bucket ?? defaultBucketName(o.region, o.accountId);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new InvalidArgumentError(`--bucket: ${bucket} is not a valid S3 bucket name`);
  await mkdir(dirname(o.configFile), { recursive: true });
  await writeFile(o.configFile, sagemakerConfigYaml(bucket));
  const vars: Record<string, string> = {
    AWS_ENDPOINT_URL: o.url,
    AWS_DEFAULT_REGION: o.region,
    AWS_REGION: o.region,
    AWS_ACCESS_KEY_ID: o.accessKeyId,
    AWS_SECRET_ACCESS_KEY: o.secretAccessKey,
    SAGEMAKER_USER_CONFIG_OVERRIDE: o.configFile,
  };
  return Object.entries(vars)
    .map(([k, v]) => `export ${k}=${quote(v)}`)
    .join("\n");
}

export function awsEnvCommand(): Command {
  return new Command("aws-env")
    .description(
      'print the environment for AWS tools (boto3, the AWS CLI, the sagemaker SDK) to use kikitori: eval "$(kikitori aws-env)"',
    )
    .option("--url <url>", "the kikitori server (default: http://$KIKITORI_HOST:$KIKITORI_PORT)")
    .option("--region <region>", "region the clients sign for (default $KIKITORI_REGION or us-east-1)")
    .option("--bucket <name>", "the sagemaker SDK's default bucket (default sagemaker-<region>-<account>)")
    .option(
      "--config-file <path>",
      "where to write the sagemaker SDK config",
      join(homedir(), ".config", "kikitori", "sagemaker-config.yaml"),
    )
    .action(async (opts: { url?: string; region?: string; bucket?: string; configFile: string }) => {
      const config = loadConfig({});
      const creds = config.auth.credentials[0];
      const host = config.host.includes(":") ? `[${config.host}]` : config.host;
      process.stdout.write(
        (await awsEnv({
          url: opts.url ?? `http://${host}:${config.port}`,
          region: opts.region ?? config.notify.region,
          bucket: opts.bucket,
          accountId: config.notify.accountId,
          configFile: resolve(opts.configFile),
          // Open mode checks no signature, but the clients still sign: any key does.
          accessKeyId: creds?.accessKeyId ?? "kikitori",
          secretAccessKey: creds?.secretAccessKey ?? "kikitori",
        })) + "\n",
      );
    });
}
