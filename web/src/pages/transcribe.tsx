import { useEffect, useState } from "preact/hooks";
import { api, ApiError, UNAUTHORIZED, useEventStream } from "../api.js";
import { bytes } from "../format.js";
import { href } from "../router.js";
import type { Invocation, Principal } from "../types.js";
import { ProgressBar, StateBadge } from "./invocations.js";

const LANGUAGES: [string, string][] = [
  ["auto", "detect"],
  ["en", "English"],
  ["ja", "Japanese"],
  ["de", "German"],
  ["fr", "French"],
  ["es", "Spanish"],
  ["it", "Italian"],
  ["pt", "Portuguese"],
  ["nl", "Dutch"],
  ["zh", "Chinese"],
  ["ko", "Korean"],
  ["ru", "Russian"],
];
const FORMATS = ["json", "verbose_json", "text", "srt", "vtt", "tsv"];
const DEFAULT_ENDPOINT = "whisper";

interface Options {
  endpoint: string;
  language: string;
  task: "transcribe" | "translate";
  format: string;
  wordTimestamps: boolean;
}

interface Upload {
  key: string;
  file: File;
  sent: number;
  inferenceId?: string;
  error?: string;
}

/** The files sent from this tab: kept while the pages change, so coming back shows them again. */
const sent = { uploads: [] as Upload[], listeners: new Set<() => void>() };

function updateUploads(f: (list: Upload[]) => Upload[]): void {
  sent.uploads = f(sent.uploads);
  for (const l of sent.listeners) l();
}

function useUploads(): Upload[] {
  const [, rerender] = useState(0);
  useEffect(() => {
    const l = () => rerender((n) => n + 1);
    sent.listeners.add(l);
    return () => void sent.listeners.delete(l);
  }, []);
  return sent.uploads;
}

/** PUTs the file with upload progress (fetch cannot report it), resolving with its s3:// location. */
function upload(location: string, file: File, onProgress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(
      "PUT",
      "/v1/objects/" +
        location
          .replace(/^s3:\/\//, "")
          .split("/")
          .map(encodeURIComponent)
          .join("/"),
    );
    xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status < 300) return resolve();
      if (xhr.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED));
      let message = `HTTP ${xhr.status}`;
      try {
        message = JSON.parse(xhr.responseText).error.message ?? message;
      } catch {
        // keep the status
      }
      reject(new Error(`upload of ${file.name}: ${message}`));
    };
    xhr.onerror = () => reject(new Error(`upload of ${file.name}: the connection failed`));
    xhr.send(file);
  });
}

/** The built-in Whisper endpoint under the default name, as the OpenAI route creates it on first use. */
async function ensureDefaultEndpoint(): Promise<void> {
  const ignoreExists = (e: unknown) => {
    if (!(e instanceof ApiError && e.status === 409)) throw e;
  };
  await api("POST", "/v1/models", { name: DEFAULT_ENDPOINT, image: "kikitori/whisper" }).catch(ignoreExists);
  await api("POST", "/v1/endpoint-configs", { name: DEFAULT_ENDPOINT, modelName: DEFAULT_ENDPOINT }).catch(
    ignoreExists,
  );
  await api("POST", "/v1/endpoints", { name: DEFAULT_ENDPOINT, configName: DEFAULT_ENDPOINT }).catch(
    ignoreExists,
  );
}

/** Drag and drop (or pick) audio files, choose the options, and watch each one to its transcript. */
export function Transcribe({ me }: { me: Principal }) {
  const [endpoints, setEndpoints] = useState<{ name: string; model: string }[]>();
  const [opts, setOpts] = useState<Options>({
    endpoint: "",
    language: "auto",
    task: "transcribe",
    format: "json",
    wordTimestamps: false,
  });
  const uploads = useUploads();
  const [invocations, setInvocations] = useState<Record<string, Invocation>>({});
  const [over, setOver] = useState(false);
  const [error, setError] = useState<string>();

  useEffect(() => {
    api<{ endpoints: { name: string; configName: string }[] }>("GET", "/v1/endpoints").then(
      async (r) => {
        const withModels = await Promise.all(
          r.endpoints.map(async (e) => {
            const c = await api<{ variants: { modelName: string }[] }>(
              "GET",
              `/v1/endpoint-configs/${encodeURIComponent(e.configName)}`,
            ).catch(() => undefined);
            return { name: e.name, model: c?.variants.map((v) => v.modelName).join(", ") ?? "" };
          }),
        );
        setEndpoints(withModels);
        setOpts((o) => ({ ...o, endpoint: o.endpoint || withModels[0]?.name || DEFAULT_ENDPOINT }));
      },
      (e: Error) => {
        // A key that may only invoke cannot list endpoints: it sends to the default one.
        if (e instanceof ApiError && e.status === 403) {
          setEndpoints([{ name: DEFAULT_ENDPOINT, model: "" }]);
          setOpts((o) => ({ ...o, endpoint: DEFAULT_ENDPOINT }));
        } else setError(e.message);
      },
    );
  }, []);

  // One stream follows every invocation started here (a stream per file would run out of connections).
  useEventStream(uploads.some((u) => u.inferenceId) ? "/v1/invocations?limit=100" : undefined, {
    snapshot: (d: { invocations: Invocation[] }) =>
      setInvocations((old) => ({
        ...old,
        ...Object.fromEntries(d.invocations.map((i) => [i.inferenceId, i])),
      })),
    invocation: (i: Invocation) => setInvocations((old) => ({ ...old, [i.inferenceId]: i })),
  });

  const patch = (key: string, p: Partial<Upload>) =>
    updateUploads((list) => list.map((u) => (u.key === key ? { ...u, ...p } : u)));

  const start = async (files: File[]) => {
    setError(undefined);
    const batch = files.map((file) => ({ key: crypto.randomUUID(), file, sent: 0 }));
    updateUploads((list) => [...batch, ...list]);
    try {
      if (
        me.scope === "admin" &&
        opts.endpoint === DEFAULT_ENDPOINT &&
        !endpoints?.some((e) => e.name === DEFAULT_ENDPOINT)
      )
        await ensureDefaultEndpoint();
    } catch (e) {
      setError(`could not create the endpoint ${DEFAULT_ENDPOINT}: ${(e as Error).message}`);
      return;
    }
    // A key that may only invoke may upload under its own prefix (whoami says which).
    const prefix = `s3://kikitori/${me.uploadPrefix ?? "uploads/"}`.replace(/\/?$/, "/");
    await Promise.all(
      batch.map(async (u) => {
        const location = `${prefix}${u.key}/${u.file.name.replace(/[\\/]/g, "_")}`;
        try {
          await upload(location, u.file, (sent) => patch(u.key, { sent }));
          const inv = await api<Invocation>(
            "POST",
            `/v1/endpoints/${encodeURIComponent(opts.endpoint)}/invocations`,
            {
              inputLocation: location,
              contentType: u.file.type || undefined,
              options: {
                ...(opts.language !== "auto" ? { language: opts.language } : {}),
                task: opts.task,
                format: opts.format,
                ...(opts.wordTimestamps ? { wordTimestamps: true } : {}),
              },
            },
          );
          setInvocations((old) => ({ ...old, [inv.inferenceId]: old[inv.inferenceId] ?? inv }));
          patch(u.key, { inferenceId: inv.inferenceId, sent: u.file.size });
        } catch (e) {
          patch(u.key, { error: (e as Error).message });
        }
      }),
    );
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length) void start(files);
  };
  const set = <K extends keyof Options>(k: K, v: Options[K]) => setOpts((o) => ({ ...o, [k]: v }));

  return (
    <section class="card" aria-labelledby="tr-title">
      <h1 id="tr-title">Transcribe</h1>
      <form class="options" onSubmit={(e) => e.preventDefault()}>
        <label>
          Model (endpoint){" "}
          <select value={opts.endpoint} onChange={(e) => set("endpoint", e.currentTarget.value)}>
            {endpoints?.map((e) => (
              <option value={e.name}>
                {e.name}
                {e.model && e.model !== e.name ? ` (${e.model})` : ""}
              </option>
            ))}
            {endpoints && !endpoints.some((e) => e.name === DEFAULT_ENDPOINT) && (
              <option value={DEFAULT_ENDPOINT}>{DEFAULT_ENDPOINT} (built-in, created on first use)</option>
            )}
          </select>
        </label>
        <label>
          Language{" "}
          <select value={opts.language} onChange={(e) => set("language", e.currentTarget.value)}>
            {LANGUAGES.map(([code, name]) => (
              <option value={code}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          Task{" "}
          <select value={opts.task} onChange={(e) => set("task", e.currentTarget.value as Options["task"])}>
            <option value="transcribe">transcribe</option>
            <option value="translate">translate to English</option>
          </select>
        </label>
        <label>
          Format{" "}
          <select value={opts.format} onChange={(e) => set("format", e.currentTarget.value)}>
            {FORMATS.map((f) => (
              <option value={f}>{f}</option>
            ))}
          </select>
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={opts.wordTimestamps}
            onChange={(e) => set("wordTimestamps", e.currentTarget.checked)}
          />{" "}
          word timings
        </label>
      </form>
      <div
        class={`drop ${over ? "over" : ""}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        <p>Drop audio or video files here</p>
        <label class="button">
          Choose files
          <input
            class="sr-only"
            type="file"
            multiple
            accept="audio/*,video/*"
            onChange={(e) => {
              const files = [...(e.currentTarget.files ?? [])];
              e.currentTarget.value = "";
              if (files.length) void start(files);
            }}
          />
        </label>
        <p class="small muted">
          {opts.format === "json" || opts.format === "verbose_json"
            ? "The transcript opens beside its audio, segment by segment."
            : "Only json and verbose_json results open beside their audio; this format shows as text."}
        </p>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {uploads.length > 0 && (
        <table class="list" data-testid="uploads">
          <thead>
            <tr>
              <th>File</th>
              <th>Size</th>
              <th>State</th>
              <th>Progress</th>
              <th>
                <span class="sr-only">Open</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {uploads.map((u) => {
              const inv = u.inferenceId ? invocations[u.inferenceId] : undefined;
              return (
                <tr data-file={u.file.name} data-state={inv?.state ?? (u.error ? "Error" : "Uploading")}>
                  <td data-label="File">{u.file.name}</td>
                  <td data-label="Size">{bytes(u.file.size)}</td>
                  <td data-label="State">
                    {u.error ? (
                      <span class="error-text">{u.error}</span>
                    ) : inv ? (
                      <StateBadge state={inv.state} />
                    ) : (
                      <span>uploading {Math.round((100 * u.sent) / Math.max(1, u.file.size))}%</span>
                    )}
                  </td>
                  <td data-label="Progress">{inv && <ProgressBar inv={inv} />}</td>
                  <td>
                    {u.inferenceId && (
                      <a href={href(`/invocations/${encodeURIComponent(u.inferenceId)}`)}>
                        {inv?.state === "Succeeded" ? "Open transcript" : "Details"}
                      </a>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
