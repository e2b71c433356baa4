import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { validation } from "../errors.js";
import { detectContainerRuntime, type ContainerRuntime } from "./container.js";

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
 * directory mounted read-only at `/opt/ml/model` and its port 8080 published on a loopback port (container.ts).
 */
export type ImageSpec =
  | { kind: "builtin" }
  | { kind: "process"; command: string; args: string[] }
  | { kind: "container"; runtime: ContainerRuntime; image: string };

const BUILTIN = /(^|\/)(kikitori[/-]whisper|builtin:whisper)(:[\w.-]+)?$/;
/** A container image reference: [registry[:port]/]name[/name...][:tag][@digest]. */
const IMAGE_REF =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

const REFUSED_HELP =
  'Use "kikitori/whisper" for the built-in Whisper server, ' +
  '"local:<command>" for a program that honours the SageMaker container contract (GET /ping and ' +
  "POST /invocations on $SAGEMAKER_BIND_TO_PORT, model files in $SM_MODEL_DIR), or a container image " +
  "in the local store of a container runtime that answers";

/** Which `local:` commands may run: they run as the service's own user, so none unless the operator says. */
export interface LocalImagePolicy {
  allowAll: boolean;
  /** Commands allowed one by one (exact paths as written in the image). */
  commands: readonly string[];
}

export const NO_LOCAL_IMAGES: LocalImagePolicy = { allowAll: false, commands: [] };

export function resolveImage(
  image: string,
  detect: () => { runtime: ContainerRuntime | null; why: string } = detectContainerRuntime,
  local: LocalImagePolicy = NO_LOCAL_IMAGES,
): ImageSpec {
  if (BUILTIN.test(image) || image === "builtin") return { kind: "builtin" };
  if (image.startsWith("local:")) {
    const parts = image.slice("local:".length).trim().split(/\s+/).filter(Boolean);
    if (!parts.length)
      throw validation("Image", '"local:" needs a command, e.g. "local:/opt/my-model/serve"');
    if (!local.allowAll && !local.commands.includes(parts[0]!))
      throw validation(
        "Image",
        `"local:" images run a command on the server as its own user and are refused unless the operator ` +
          `allows them: KIKITORI_ALLOW_LOCAL_IMAGES=1, or KIKITORI_LOCAL_IMAGE_COMMANDS=${parts[0]} (a comma-separated allow-list)`,
      );
    return { kind: "process", command: parts[0]!, args: parts.slice(1) };
  }
  const ref = image.startsWith("container:") ? image.slice("container:".length) : image;
  const found = IMAGE_REF.test(ref) ? detect() : undefined;
  if (found?.runtime) return { kind: "container", runtime: found.runtime, image: ref };
  throw validation(
    "Image",
    `kikitori cannot run image "${image}". ${REFUSED_HELP} (${found ? `none does here: ${found.why}` : `"${ref}" is not an image reference`}).`,
  );
}

/**
 * CreateModel's check, as SageMaker's ("Requested image … not found"): an image no instance could run is
 * refused, and a container image must already be in the runtime's local store (built, loaded or pulled).
 */
export async function checkImage(image: string, local: LocalImagePolicy = NO_LOCAL_IMAGES): Promise<void> {
  const spec = resolveImage(image, undefined, local);
  if (spec.kind !== "container") return;
  const { command, globalArgs } = spec.runtime;
  try {
    await promisify(execFile)(command, [...globalArgs, "image", "inspect", spec.image], { timeout: 30_000 });
  } catch {
    throw validation(
      "Image",
      `kikitori cannot run image "${image}": ${command} has no such image in its local store ` +
        `(${command} build -t ${spec.image} …, ${command} load, or ${command} pull ${spec.image} first). ${REFUSED_HELP}.`,
    );
  }
}
