import { mkdir, writeFile, access } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { Command, InvalidArgumentError, Option } from "commander";
import cliProgress from "cli-progress";
import { loadConfig } from "../config.js";
import { startKikitori, type Kikitori } from "../main.js";
import { OUTPUT_FORMATS, type OutputFormat } from "../whisper/types.js";
import { ApiClient, ApiError, reconnecting, ServerGone } from "./client.js";
import { readSse } from "../notify/index.js";

const EXTENSIONS: Record<OutputFormat, string> = {
  json: "json",
  verbose_json: "json",
  text: "txt",
  srt: "srt",
  vtt: "vtt",
  tsv: "tsv",
};

interface TranscribeOpts {
  format: OutputFormat;
  out: string;
  language?: string;
  task: "transcribe" | "translate";
  prompt?: string;
  wordTimestamps?: boolean;
  /** false with --no-vad; undefined: the server's default (on over 30 s). */
  vad?: boolean;
  url?: string;
  apiKey?: string;
  endpoint: string;
  dataDir?: string;
  /** Seconds to wait for each file's result, across reconnections (default: no limit). */
  timeout?: number;
}

/** ", done by 14:02:10 (in 3 min 5 s)" for the server's estimated finish (ISO), or nothing without one. */
export function etaText(eta: string | undefined, now = Date.now()): string {
  if (!eta) return "";
  const s = Math.max(0, Math.round((Date.parse(eta) - now) / 1000));
  const left = s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  return `, done by ${new Date(eta).toLocaleTimeString()} (in ${left})`;
}

interface InvocationView {
  inferenceId: string;
  inputLocation: string;
  state: string;
  error?: { code: string; message: string };
}

/** Creates the default Whisper endpoint if it does not exist yet. */
export async function ensureEndpoint(api: ApiClient, name: string): Promise<void> {
  try {
    await api.json("GET", `/v1/endpoints/${name}`);
    return;
  } catch (e) {
    // A key below admin cannot look, nor create: the endpoint must exist.
    if (e instanceof ApiError && e.status === 403) return;
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  await api.json("POST", "/v1/models", { name, image: "kikitori/whisper" }, [201, 409]);
  await api.json("POST", "/v1/endpoint-configs", { name, modelName: name }, [201, 409]);
  await api.json("POST", "/v1/endpoints", { name, configName: name }, [201, 409]);
}

export function transcribeCommand(): Command {
  return new Command("transcribe")
    .description("transcribe audio files: upload, invoke, follow progress, write the results")
    .argument("<files...>", "audio files (wav, flac, mp3, ogg/opus, m4a, webm, mp4, ...)")
    .addOption(
      new Option("-f, --format <format>", "output format").choices([...OUTPUT_FORMATS]).default("text"),
    )
    .option("-o, --out <dir>", "directory for the results (- prints them to standard output)", ".")
    .option("-l, --language <code>", "spoken language, e.g. en, ja (default: detect)")
    .addOption(
      new Option("--task <task>", "transcribe, or translate to English")
        .choices(["transcribe", "translate"])
        .default("transcribe"),
    )
    .option("--prompt <text>", "initial prompt: vocabulary, names, style")
    .option("--word-timestamps", "include per-word timings (json, verbose_json)")
    .option("--no-vad", "do not cut long files at speech (Silero VAD, on by default over 30 s)")
    .option("--url <url>", "a running kikitori server (default: start an embedded one)")
    .option("--api-key <key>", "API key for --url (default: $KIKITORI_API_KEY)")
    .option(
      "--endpoint <name>",
      "endpoint to invoke (created with the built-in Whisper model if missing)",
      "whisper",
    )
    .option("--data-dir <dir>", "data directory of the embedded server")
    .option(
      "--timeout <seconds>",
      "give up on a file after this long (default: wait; the CLI reconnects to a restarted server)",
      (v) => {
        const n = Number(v);
        if (!(n > 0)) throw new InvalidArgumentError(`--timeout: not a positive number of seconds: ${v}`);
        return n;
      },
    )
    .action(async (files: string[], opts: TranscribeOpts) => {
      for (const f of files) {
        await access(f).catch(() => {
          throw new InvalidArgumentError(`no such file: ${f}`);
        });
      }
      let embedded: Kikitori | undefined;
      // The embedded server honours the data directory's keys; this command holds a key of its own.
      const processToken = randomBytes(32).toString("base64url");
      if (!opts.url) {
        embedded = await startKikitori(
          // Loopback whatever KIKITORI_HOST says (as in kikitori's image): only this command talks to it.
          loadConfig({
            host: "127.0.0.1",
            port: 0,
            log: false,
            auth: { processToken },
            ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
          }),
        );
      }
      try {
        const api = opts.url
          ? new ApiClient(opts.url, opts.apiKey ?? process.env.KIKITORI_API_KEY)
          : new ApiClient(embedded!.url, embedded!.authMode === "keys" ? processToken : undefined);
        await ensureEndpoint(api, opts.endpoint);
        const failures = await transcribeAll(api, files, opts);
        if (failures > 0) process.exitCode = 1;
      } finally {
        await embedded?.close();
      }
    });
}

async function transcribeAll(api: ApiClient, files: string[], opts: TranscribeOpts): Promise<number> {
  // Uploads go where this caller may put them (an `invoke` key: its own prefix).
  const prefix = (await api.json<{ uploadPrefix: string }>("GET", "/v1/auth/whoami")).uploadPrefix;
  const tty = process.stderr.isTTY;
  const bars = new cliProgress.MultiBar(
    {
      format: "{file} |{bar}| {percentage}% {stage}",
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
      noTTYOutput: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const width = Math.min(30, Math.max(...files.map((f) => basename(f).length)));
  const label = (f: string) => basename(f).slice(0, width).padEnd(width);
  let failures = 0;
  const say = (file: string, stage: string) => {
    if (!tty) process.stderr.write(`${basename(file)}: ${stage}\n`);
  };
  await Promise.all(
    files.map(async (file) => {
      const bar = tty ? bars.create(100, 0, { file: label(file), stage: "uploading" }) : undefined;
      const update = (pct: number, stage: string) => bar?.update(Math.round(pct), { stage });
      try {
        let last = "";
        let lastPct = 0;
        const show = (pct: number, stage: string) => {
          update(pct, stage);
          if (stage !== last) say(file, stage);
          last = stage;
          lastPct = pct;
        };
        const key = `${prefix}${randomUUID()}/${basename(file)}`;
        // The server may restart at any point: each step retries with backoff on connection errors and
        // 5xx answers, until the user's --timeout (the invocation, once accepted, is durable).
        const deadline = opts.timeout !== undefined ? AbortSignal.timeout(opts.timeout * 1000) : undefined;
        const retry = reconnecting(deadline, (why) => show(lastPct, `reconnecting (${why})`));
        say(file, "uploading");
        const uploaded = await retry(() =>
          api.upload(file, "kikitori", key, (sent, total) =>
            update(total ? (100 * sent) / total : 100, "uploading"),
          ),
        );
        // The file's invocation id is chosen here, so a submission whose answer was lost (the server
        // committed it, then went away) can be sent again: the server answers 409 for an id it holds, and
        // that invocation is the file's.
        const inferenceId = randomUUID();
        const inv = await retry(async () => {
          try {
            return await api.json<InvocationView>("POST", `/v1/endpoints/${opts.endpoint}/invocations`, {
              inferenceId,
              inputLocation: uploaded.location,
              contentType: contentTypeOf(file),
              options: {
                // json (or verbose_json) always: it says which language was heard; other formats are
                // rendered from it afterwards.
                format: opts.format === "verbose_json" ? "verbose_json" : "json",
                language: opts.language,
                task: opts.task,
                prompt: opts.prompt,
                wordTimestamps: opts.wordTimestamps,
                ...(opts.vad === false ? { vad: false } : {}),
              },
            });
          } catch (e) {
            if (!(e instanceof ApiError && e.status === 409)) throw e;
            // Another conflict (no invocation under this id, or not this file's): that 409 is the answer.
            const held = await api
              .json<InvocationView>("GET", `/v1/invocations/${inferenceId}`)
              .catch((g: unknown) => {
                throw g instanceof ApiError && g.status === 404 ? e : g;
              });
            if (held.inputLocation !== uploaded.location) throw e;
            return held;
          }
        });
        const id = encodeURIComponent(inv.inferenceId);
        const { view, result } = await retry(async () => {
          // Live events (SSE) instead of polling: queued position, started, progress, completed. The
          // stream ends when the invocation does, or when the server goes away (then the state tells).
          const res = await fetch(`${api.baseUrl}/v1/invocations/${id}/events`, {
            signal: deadline,
            headers: api.headers(),
          });
          if (!res.ok || !res.body) throw new ApiError(res.status, await res.text(), "follow events");
          for await (const e of readSse(res.body)) {
            const d = JSON.parse(e.data) as { position?: number; percent?: number; eta?: string };
            if (e.event === "queued") show(0, `queued at position ${d.position ?? "?"}${etaText(d.eta)}`);
            else if (e.event === "started") show(0, "transcribing 0%");
            else if (e.event === "progress")
              show(d.percent ?? 0, `transcribing ${Math.floor(d.percent ?? 0)}%${etaText(d.eta)}`);
          }
          const view = await api.json<InvocationView>("GET", `/v1/invocations/${id}`);
          if (view.state === "Queued" || view.state === "Running")
            throw new ServerGone("the event stream ended before the invocation did");
          const result = await api.result(inv.inferenceId);
          if (result.status >= 500) throw new ApiError(result.status, result.body.toString(), "result");
          return { view, result };
        });
        if (view.state !== "Succeeded") {
          failures++;
          update(100, `${view.state}: ${view.error?.message ?? result.body.toString("utf8").slice(0, 200)}`);
          say(file, `${view.state}: ${view.error?.message ?? ""}`);
          return;
        }
        const heard = languageOf(result.body);
        const body =
          opts.format === "json" || opts.format === "verbose_json"
            ? result.body
            : await api.result(inv.inferenceId, opts.format).then((r) => {
                if (r.status !== 200)
                  throw new ApiError(r.status, r.body.toString(), `render ${opts.format}`);
                return r.body;
              });
        if (opts.out === "-") {
          bar?.update(100, { stage: `done${heard}` });
          say(file, `done${heard}`);
          process.stdout.write(body);
        } else {
          await mkdir(opts.out, { recursive: true });
          const target = join(opts.out, `${basename(file, extname(file))}.${EXTENSIONS[opts.format]}`);
          await writeFile(target, body);
          update(100, `done${heard} → ${target}`);
          say(file, `done${heard} → ${target}`);
        }
      } catch (e) {
        failures++;
        update(100, `failed: ${(e as Error).message}`);
        say(file, `failed: ${(e as Error).message}`);
      }
    }),
  );
  bars.stop();
  return failures;
}

/** " (language ja, probability 0.98)" from a json or verbose_json result, the probability where it was detected. */
function languageOf(doc: Buffer): string {
  try {
    const t = JSON.parse(doc.toString("utf8")) as { language?: string; language_probability?: number };
    if (!t.language) return "";
    const p = t.language_probability;
    return ` (language ${t.language}${typeof p === "number" ? `, probability ${p.toFixed(2)}` : ""})`;
  } catch {
    return "";
  }
}

const TYPES: Record<string, string> = {
  ".wav": "audio/wav",
  ".flac": "audio/flac",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".opus": "audio/ogg",
  ".m4a": "audio/mp4",
  ".mp4": "video/mp4",
  ".webm": "audio/webm",
};
const contentTypeOf = (file: string) => TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
