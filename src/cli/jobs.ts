import { mkdir, writeFile } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, Option } from "commander";
import { OUTPUT_FORMATS, type OutputFormat } from "../whisper/types.js";
import { ApiClient, ApiError } from "./client.js";
import { CONTENT_TYPES } from "../whisper/formats.js";
import { etaText } from "./transcribe.js";

/** What the CLI reads of a job (GET /v1/jobs/{id}, src/api/rest/jobs.ts). */
interface JobView {
  id: string;
  state: string;
  counts: Record<string, number>;
  progress: { filesDone: number; filesTotal: number; percent: number };
  eta?: string;
  files: {
    index: number;
    name: string;
    inferenceId: string;
    state: string;
    result: string;
    error?: { message: string };
  }[];
}

const ENDED = new Set(["completed", "partially-failed", "failed", "cancelled"]);

interface ServerOpts {
  url: string;
  apiKey?: string;
}

const client = (o: ServerOpts) => new ApiClient(o.url, o.apiKey ?? process.env.KIKITORI_API_KEY);

/** --url and --api-key: jobs outlive the command, so they always go to a running server. */
function withServer(cmd: Command): Command {
  return cmd
    .option("--url <url>", "the kikitori server", process.env.KIKITORI_URL ?? "http://127.0.0.1:7600")
    .option("--api-key <key>", "API key (default: $KIKITORI_API_KEY)");
}

/** Follow-up options of submit and show: wait for the end, write the results. */
function withResults(cmd: Command): Command {
  return cmd
    .option("--wait", "follow the job until every file has ended")
    .option("-o, --out <dir>", "write each finished file's result here (implies --wait)");
}

const summary = (j: JobView) =>
  `job ${j.id}: ${j.state}, ${j.progress.filesDone}/${j.progress.filesTotal} files ended ` +
  `(${Math.floor(j.progress.percent)}%)${etaText(j.eta)}`;

/** Follows a job until it ends, one line per change; then writes the results when asked. */
async function follow(api: ApiClient, id: string, o: { wait?: boolean; out?: string }): Promise<JobView> {
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  let job = await api.json<JobView>("GET", path);
  if (o.wait || o.out) {
    let last = "";
    for (;;) {
      const line = summary(job).replace(/, done by.*$/, "");
      if (line !== last) process.stderr.write(`${summary(job)}\n`);
      last = line;
      if (ENDED.has(job.state)) break;
      await sleep(1000);
      job = await api.json<JobView>("GET", path);
    }
  }
  for (const f of job.files)
    process.stdout.write(
      `${f.index}\t${f.state}\t${f.name}\t${f.inferenceId}${f.error ? `\t${f.error.message}` : ""}\n`,
    );
  if (o.out) {
    await mkdir(o.out, { recursive: true });
    for (const f of job.files.filter((f) => f.state === "Succeeded")) {
      const res = await fetch(api.baseUrl + f.result, { headers: api.headers() });
      if (!res.ok) throw new ApiError(res.status, await res.text(), `result of ${f.name}`);
      const target = join(
        o.out,
        `${String(f.index).padStart(3, "0")}-${basename(f.name, extname(f.name))}${extOf(res)}`,
      );
      await writeFile(target, Buffer.from(await res.arrayBuffer()));
      process.stderr.write(`${f.name} → ${target}\n`);
    }
  }
  return job;
}

/** The result's extension from its content type (the format the job asked for). */
function extOf(res: Response): string {
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  const format = (Object.keys(CONTENT_TYPES) as OutputFormat[]).find(
    (f) => CONTENT_TYPES[f].split(";")[0] === type,
  );
  return `.${format === undefined ? "out" : format === "verbose_json" ? "json" : format === "text" ? "txt" : format}`;
}

const exitFor = (job: JobView) => (job.state === "completed" || !ENDED.has(job.state) ? 0 : 1);

/**
 * `kikitori jobs`: many files as one job on a running server (POST /v1/jobs). Local files are uploaded
 * under the caller's prefix first; s3:// locations are taken as they are.
 */
export function jobsCommand(): Command {
  const submit = withResults(
    withServer(
      new Command("submit")
        .description("submit files (local paths or s3:// locations) as one job; prints its id")
        .argument("<inputs...>", "audio files, or s3://bucket/key objects already in the store")
        .option("--endpoint <name>", "endpoint every file is invoked on", "whisper")
        .addOption(
          new Option("-f, --format <format>", "output format").choices([...OUTPUT_FORMATS]).default("text"),
        )
        .option("-l, --language <code>", "spoken language, e.g. en, ja (default: detect)")
        .addOption(
          new Option("--task <task>", "transcribe, or translate to English").choices([
            "transcribe",
            "translate",
          ]),
        )
        .option("--no-vad", "do not cut long files at speech"),
    ),
  ).action(
    async (
      inputs: string[],
      o: ServerOpts & {
        endpoint: string;
        format: OutputFormat;
        language?: string;
        task?: string;
        vad?: boolean;
        wait?: boolean;
        out?: string;
      },
    ) => {
      const api = client(o);
      const local = inputs.filter((i) => !i.startsWith("s3://"));
      const prefix = local.length
        ? (await api.json<{ uploadPrefix: string }>("GET", "/v1/auth/whoami")).uploadPrefix
        : "";
      const folder = `${prefix}jobs/${randomUUID()}/`;
      const manifest = [];
      for (const [i, input] of inputs.entries()) {
        if (input.startsWith("s3://")) {
          manifest.push({ uri: input });
          continue;
        }
        const up = await api.upload(input, "kikitori", `${folder}${i}/${basename(input)}`, () => {});
        manifest.push({ uri: up.location, name: basename(input) });
      }
      const job = await api.json<JobView>("POST", "/v1/jobs", {
        endpoint: o.endpoint,
        inputs: manifest,
        options: {
          format: o.format,
          language: o.language,
          task: o.task,
          ...(o.vad === false ? { vad: false } : {}),
        },
      });
      process.stdout.write(`${job.id}\n`);
      if (o.wait || o.out) process.exitCode = exitFor(await follow(api, job.id, o));
    },
  );
  const show = withResults(
    withServer(new Command("show").description("a job's state and files").argument("<id>", "job id")),
  ).action(async (id: string, o: ServerOpts & { wait?: boolean; out?: string }) => {
    const job = await follow(client(o), id, o);
    if (!o.wait && !o.out) process.stderr.write(`${summary(job)}\n`);
    process.exitCode = exitFor(job);
  });
  const list = withServer(new Command("list").description("jobs, newest first")).action(
    async (o: ServerOpts) => {
      const { jobs } = await client(o).json<{
        jobs: (Omit<JobView, "files" | "progress"> & { files: number; createdAt: string })[];
      }>("GET", "/v1/jobs");
      for (const j of jobs)
        process.stdout.write(
          `${j.id}\t${j.state}\t${j.files} files\t${j.counts.succeeded} succeeded\t${j.createdAt}\n`,
        );
    },
  );
  const cancel = withServer(
    new Command("cancel").description("cancel a job's files not ended yet").argument("<id>", "job id"),
  ).action(async (id: string, o: ServerOpts) => {
    const job = await client(o).json<JobView>("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`);
    process.stderr.write(`${summary(job)}\n`);
  });
  const jobs = new Command("jobs").description(
    "many files as one job on a running server (--url): submit, show, list, cancel",
  );
  for (const c of [submit, show, list, cancel])
    jobs.addCommand(
      c.allowUnknownOption(false).allowExcessArguments(false).showHelpAfterError().exitOverride(),
    );
  return jobs;
}
