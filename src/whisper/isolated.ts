/**
 * A NativeModel that runs whisper.cpp in a child process (worker.ts), one per engine slot.
 *
 * Why: a native crash costs one worker, not the model server. A stop asks the worker to abort the run
 * (the CPU addon stops at the next graph computation); a worker that has not answered within
 * ABORT_GRACE_MS is killed, and restarted (the model reloaded) on the next call.
 */
import { fork, type ChildProcess } from "node:child_process";
import {
  ModelLoadError,
  TranscriptionError,
  readModelInfo,
  type NativeModel,
  type NativeRun,
} from "./addon.js";
import { workerEntry } from "./worker-entry.js";

const STDERR_LINES_KEPT = 20;
const ABORT_GRACE_MS = 1000;

type Reply =
  | { type: "ready" }
  | { type: "loadFailed"; message: string }
  | { type: "result"; id: number; result: unknown }
  | { type: "failed"; id: number; message: string };

interface Pending {
  id: number;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

export async function loadIsolatedModel(modelPath: string, opts: { gpu: boolean }): Promise<NativeModel> {
  const { multilingual } = await readModelInfo(modelPath);
  const worker = new WorkerHandle(modelPath, opts.gpu);
  await worker.started();
  return {
    multilingual,
    transcribe: (pcm, params) => worker.call({ type: "transcribe", pcm, params }),
    detectLanguage: (pcm, threads) => worker.call({ type: "detect", pcm, threads }),
    speech: (pcm, opts) => worker.call({ type: "speech", pcm, opts }),
    release: () => worker.stop(),
  };
}

class WorkerHandle {
  private child: ChildProcess | undefined;
  private starting: Promise<ChildProcess> | undefined;
  private pending: Pending | undefined;
  private nextId = 1;
  private released = false;

  constructor(
    private readonly modelPath: string,
    private readonly gpu: boolean,
  ) {}

  started(): Promise<ChildProcess> {
    this.starting ??= this.spawn().catch((e: unknown) => {
      this.starting = undefined;
      throw e;
    });
    return this.starting;
  }

  call<T>(request: Record<string, unknown>): NativeRun<T> {
    const id = this.nextId++;
    let stopped = false;
    const result = new Promise<T>((resolve, reject) => {
      this.started().then((child) => {
        if (stopped) return reject(new TranscriptionError("transcription stopped"));
        if (this.pending) return reject(new TranscriptionError("the whisper worker is busy"));
        this.pending = { id, resolve: resolve as (r: unknown) => void, reject };
        child.send({ ...request, id });
      }, reject);
    });
    return {
      stop: () => {
        stopped = true;
        if (this.pending?.id !== id) return;
        const child = this.child;
        child?.send({ type: "abort", id });
        const timer = setTimeout(() => {
          if (this.pending?.id === id && this.child === child) this.kill();
        }, ABORT_GRACE_MS);
        timer.unref();
      },
      result,
    };
  }

  async stop(): Promise<void> {
    this.released = true;
    const child = this.child;
    this.kill();
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => child.once("exit", resolve));
    }
  }

  private kill(): void {
    this.child?.kill("SIGKILL");
  }

  private async spawn(): Promise<ChildProcess> {
    if (this.released) throw new ModelLoadError("the model was released");
    const worker = await workerEntry();
    if (this.released) throw new ModelLoadError("the model was released");
    const child = fork(worker.file, [this.modelPath, this.gpu ? "gpu" : "cpu"], {
      execArgv: worker.execArgv,
      serialization: "advanced",
      env: workerEnvironment(process.env),
      // whisper.cpp logs every load to stderr; keep the tail for error messages instead of printing it.
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    const stderr: string[] = [];
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (text: string) => {
      stderr.push(...text.split("\n").filter((l) => l.trim()));
      stderr.splice(0, Math.max(0, stderr.length - STDERR_LINES_KEPT));
    });
    return new Promise((resolve, reject) => {
      child.on("message", (m: Reply) => {
        if (m.type === "ready") {
          this.child = child;
          resolve(child);
        } else if (m.type === "loadFailed") {
          reject(new ModelLoadError(m.message));
        } else if (this.pending?.id === m.id) {
          const p = this.pending;
          this.pending = undefined;
          if (m.type === "result") p.resolve(m.result);
          else p.reject(new TranscriptionError(m.message));
        }
      });
      child.once("exit", (code, signal) => {
        if (this.child === child) this.child = undefined;
        this.starting = undefined;
        const why = signal === "SIGKILL" ? "was stopped" : `exited (${signal ?? `code ${code}`})`;
        const detail = stderr.slice(-3).join(" | ");
        reject(new ModelLoadError(`the whisper worker ${why} while loading ${this.modelPath}: ${detail}`));
        const p = this.pending;
        this.pending = undefined;
        p?.reject(
          new TranscriptionError(
            `the whisper worker ${why}${detail && signal !== "SIGKILL" ? `: ${detail}` : ""}`,
          ),
        );
      });
    });
  }
}

/**
 * The worker's environment. ggml's CPU backend meets at an OpenMP barrier after every graph node; libgomp's
 * default is to spin there, which on a machine whose cores are busy with other work (other instances, the
 * service itself) turns a 25 ms decoder step into a second. A passive wait sleeps instead: measured with
 * whisper.cpp's CLI on 30 s of speech, beam 5, 2 threads, under a load of 4-5 on 2 cores, 7-24 s spinning
 * against 2.6-6 s passive; when the cores were free, within noise of each other. An operator's own
 * OMP_WAIT_POLICY is kept.
 */
export function workerEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, OMP_WAIT_POLICY: env.OMP_WAIT_POLICY ?? "passive" };
}
