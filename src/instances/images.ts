import { execFileSync } from "node:child_process";
import { validation } from "../errors.js";

/**
 * What an instance runs, resolved from `CreateModel.PrimaryContainer.Image`:
 *
 * | image                                   | runs                                                        |
 * | --------------------------------------- | ----------------------------------------------------------- |
 * | `kikitori/whisper`, `kikitori-whisper`, `builtin:whisper` (any tag/registry prefix) | the built-in Whisper model server |
 * | `local:<command> [args…]`               | a local program honouring the container contract            |
 * | `container:<image>`, or any other image where docker/podman works | that container image, run by the container runtime |
 * | anything else                           | refused, with the table above in the message                |
 *
 * The local program gets `SAGEMAKER_BIND_TO_PORT`, `SM_MODEL_DIR` and the model's environment, and is
 * started with the argument `serve`, as SageMaker starts a container. A container gets the model
 * directory mounted read-only at `/opt/ml/model` and its port 8080 published on a loopback port.
 */
export type ImageSpec =
  | { kind: "builtin" }
  | { kind: "process"; command: string; args: string[] }
  | { kind: "container"; runtime: string; image: string };

const BUILTIN = /(^|\/)(kikitori[/-]whisper|builtin:whisper)(:[\w.-]+)?$/;
/** A container image reference: [registry[:port]/]name[/name...][:tag][@digest]. */
const IMAGE_REF =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

let detected: string | null | undefined;

/** The first container runtime whose daemon answers (`KIKITORI_CONTAINER_RUNTIME` picks one), or null. */
export function containerRuntime(): string | null {
  if (detected !== undefined) return detected;
  const candidates = process.env.KIKITORI_CONTAINER_RUNTIME
    ? [process.env.KIKITORI_CONTAINER_RUNTIME]
    : ["docker", "podman"];
  detected = null;
  for (const runtime of candidates) {
    try {
      execFileSync(runtime, ["info", "--format", "{{.ServerVersion}}"], { stdio: "ignore", timeout: 5000 });
      detected = runtime;
      break;
    } catch {
      // not installed, or no daemon answering
    }
  }
  return detected;
}

export function resolveImage(image: string, runtime: () => string | null = containerRuntime): ImageSpec {
  if (BUILTIN.test(image) || image === "builtin") return { kind: "builtin" };
  if (image.startsWith("local:")) {
    const parts = image.slice("local:".length).trim().split(/\s+/).filter(Boolean);
    if (!parts.length)
      throw validation("Image", '"local:" needs a command, e.g. "local:/opt/my-model/serve"');
    return { kind: "process", command: parts[0]!, args: parts.slice(1) };
  }
  const ref = image.startsWith("container:") ? image.slice("container:".length) : image;
  if (IMAGE_REF.test(ref)) {
    const rt = runtime();
    if (rt) return { kind: "container", runtime: rt, image: ref };
  }
  throw validation(
    "Image",
    `kikitori cannot run image "${image}". Use "kikitori/whisper" for the built-in Whisper server, ` +
      `"local:<command>" for a program that honours the SageMaker container contract (GET /ping and ` +
      `POST /invocations on $SAGEMAKER_BIND_TO_PORT, model files in $SM_MODEL_DIR), or a container image ` +
      `where a docker or podman daemon answers (none does here${IMAGE_REF.test(ref) ? "" : `, and "${ref}" is not an image reference`}).`,
  );
}

/** The container runtime's command line for one instance, as SageMaker runs a model container. */
export function containerArgs(o: {
  image: string;
  name: string;
  port: number;
  modelDir: string;
  environment: Record<string, string>;
}): string[] {
  const env = Object.entries({
    ...o.environment,
    SAGEMAKER_BIND_TO_PORT: "8080",
    SM_MODEL_DIR: "/opt/ml/model",
  });
  return [
    "run",
    "--rm",
    "--name",
    o.name,
    "--publish",
    `127.0.0.1:${o.port}:8080`,
    "--volume",
    `${o.modelDir}:/opt/ml/model:ro`,
    ...env.flatMap(([k, v]) => ["--env", `${k}=${v}`]),
    o.image,
    "serve",
  ];
}
