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

export function resolveImage(
  image: string,
  detect: () => { runtime: ContainerRuntime | null; why: string } = detectContainerRuntime,
): ImageSpec {
  if (BUILTIN.test(image) || image === "builtin") return { kind: "builtin" };
  if (image.startsWith("local:")) {
    const parts = image.slice("local:".length).trim().split(/\s+/).filter(Boolean);
    if (!parts.length)
      throw validation("Image", '"local:" needs a command, e.g. "local:/opt/my-model/serve"');
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
export async function checkImage(image: string): Promise<void> {
  const spec = resolveImage(image);
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
