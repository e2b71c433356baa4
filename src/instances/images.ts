import { validation } from "../errors.js";

/**
 * What an instance runs, resolved from `CreateModel.PrimaryContainer.Image`:
 *
 * | image                                   | runs                                                        |
 * | --------------------------------------- | ----------------------------------------------------------- |
 * | `kikitori/whisper`, `kikitori-whisper`, `builtin:whisper` (any tag/registry prefix) | the built-in Whisper model server |
 * | `local:<command> [args…]`               | a local program honouring the container contract            |
 * | anything else                           | refused, with the table above in the message                |
 *
 * The local program gets `SAGEMAKER_BIND_TO_PORT`, `SM_MODEL_DIR` and the model's environment, and is
 * started with the argument `serve`, as SageMaker starts a container.
 */
export type ImageSpec = { kind: "builtin" } | { kind: "process"; command: string; args: string[] };

const BUILTIN = /(^|\/)(kikitori[/-]whisper|builtin:whisper)(:[\w.-]+)?$/;

export function resolveImage(image: string): ImageSpec {
  if (BUILTIN.test(image) || image === "builtin") return { kind: "builtin" };
  if (image.startsWith("local:")) {
    const parts = image.slice("local:".length).trim().split(/\s+/).filter(Boolean);
    if (!parts.length)
      throw validation("Image", '"local:" needs a command, e.g. "local:/opt/my-model/serve"');
    return { kind: "process", command: parts[0]!, args: parts.slice(1) };
  }
  throw validation(
    "Image",
    `kikitori cannot run image "${image}". Use "kikitori/whisper" for the built-in Whisper server, or ` +
      `"local:<command>" for a program that honours the SageMaker container contract (GET /ping and ` +
      `POST /invocations on $SAGEMAKER_BIND_TO_PORT, model files in $SM_MODEL_DIR).`,
  );
}
