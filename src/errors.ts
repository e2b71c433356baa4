/**
 * The error catalogue: every error kikitori reports on purpose has one stable code here.
 * Front doors map the code to their dialect (an AWS error name, an OpenAI error, a REST body).
 */
export const ERRORS = {
  ValidationError: { status: 400, aws: "ValidationException", retryable: false },
  NotFound: { status: 404, aws: "ResourceNotFound", retryable: false },
  AlreadyExists: { status: 409, aws: "ResourceInUse", retryable: false },
  Conflict: { status: 409, aws: "ResourceInUse", retryable: false },
  PayloadTooLarge: { status: 413, aws: "ValidationError", retryable: false },
  UnsupportedMediaType: { status: 415, aws: "ValidationError", retryable: false },
  InvalidAudio: { status: 422, aws: "ModelError", retryable: false },
  InputNotFound: { status: 400, aws: "ValidationError", retryable: false },
  ModelError: { status: 424, aws: "ModelError", retryable: false },
  ModelServerUnavailable: { status: 503, aws: "ServiceUnavailable", retryable: true },
  InvocationTimeout: { status: 408, aws: "ModelError", retryable: false },
  LeaseExpired: { status: 500, aws: "InternalFailure", retryable: true },
  RequestExpired: { status: 410, aws: "ValidationError", retryable: false },
  Cancelled: { status: 409, aws: "ValidationError", retryable: false },
  EndpointDeleted: { status: 410, aws: "ValidationError", retryable: false },
  Forbidden: { status: 403, aws: "AccessDeniedException", retryable: false },
  InsufficientStorage: { status: 507, aws: "InsufficientStorage", retryable: true },
  NotImplemented: { status: 501, aws: "NotImplemented", retryable: false },
  Internal: { status: 500, aws: "InternalFailure", retryable: true },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class KikitoriError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = code;
    this.status = ERRORS[code].status;
  }
  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }
}

/**
 * An error already in one wire dialect's vocabulary (an S3 or AWS error code) with the HTTP status to
 * answer. Each dialect subclasses it, so a front door can tell its own errors apart with `instanceof`.
 */
export class CodedError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

export const validation = (field: string, reason: string) =>
  new KikitoriError("ValidationError", `${field}: ${reason}`);
export const notFound = (what: string, name: string) =>
  new KikitoriError("NotFound", `${what} "${name}" does not exist`);
export const alreadyExists = (what: string, name: string) =>
  new KikitoriError("AlreadyExists", `${what} "${name}" already exists`);

/** Turns anything thrown into an Error, keeping the original as cause. */
export function coerceError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(typeof e === "string" ? e : JSON.stringify(e), { cause: e });
}

/** A full disk or database, whichever layer hit it, as the 507 every door answers with its reason. */
export function insufficientStorage(e: unknown): KikitoriError | undefined {
  const code = (e as { code?: string } | undefined)?.code;
  if (code !== "ENOSPC" && code !== "EDQUOT" && code !== "SQLITE_FULL") return undefined;
  return new KikitoriError(
    "InsufficientStorage",
    `the server is out of storage space (${code}): nothing was stored; free space and retry`,
  );
}
