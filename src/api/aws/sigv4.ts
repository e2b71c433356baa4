import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

/**
 * AWS Signature Version 4 verification, protocol-neutral: S3 maps AuthError to its XML, JSON protocols
 * (SageMaker, Application Auto Scaling, ...) to `{"__type": jsonCode}`.
 * The expected signature is computed by @smithy/signature-v4 (the signer the AWS SDK itself uses) over
 * the request as received: the raw path, the signed headers only, the client's date, region and service.
 */

export interface AwsCredential {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface AwsAuthConfig {
  /** `open` accepts any request (local development); `sigv4` requires a valid signature. */
  mode: "sigv4" | "open";
  credentials: AwsCredential[];
  /** Allowed distance between the request's date and ours. @defaultValue 15 minutes (as AWS) */
  maxClockSkewMs?: number;
}

export interface AuthRequest {
  method: string;
  /** Path and query exactly as sent (Node's `request.raw.url`), never decoded. */
  rawUrl: string;
  headers: IncomingHttpHeaders;
  /** The body, for services whose clients send no `x-amz-content-sha256` (JSON protocols). */
  body?: Buffer;
}

export interface AwsIdentity {
  /** `anonymous` for unsigned requests in open mode. */
  accessKeyId: string;
  region?: string;
  service?: string;
  /**
   * For `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` bodies (header auth in sigv4 mode): the expected signature of
   * the next chunk, given the previous chunk's signature (first: the request's) and the chunk's SHA-256.
   */
  chunkSignature?: (previousSignature: string, chunkSha256Hex: string) => string;
  /** The request's own signature: the first `previousSignature` of a signed chunked body. */
  signature?: string;
}

export interface AwsAuth {
  readonly mode: "sigv4" | "open";
  verify(req: AuthRequest): Promise<AwsIdentity>;
}

/** An authentication failure with its S3 code (`code`) and its JSON-protocol name (`jsonCode`). */
export class AuthError extends Error {
  readonly status = 403;
  constructor(
    readonly code:
      | "InvalidAccessKeyId"
      | "SignatureDoesNotMatch"
      | "AccessDenied"
      | "RequestTimeTooSkewed"
      | "AuthorizationHeaderMalformed",
    readonly jsonCode: string,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}

const ALGORITHM = "AWS4-HMAC-SHA256";
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export function createAwsAuth(config: AwsAuthConfig): AwsAuth {
  // sigv4 without credentials refuses every AWS request (API keys may still open the native doors).
  const secrets = new Map(config.credentials.map((c) => [c.accessKeyId, c.secretAccessKey]));
  const maxSkewMs = config.maxClockSkewMs ?? 15 * 60 * 1000;

  return {
    mode: config.mode,
    async verify(req) {
      const { path, query } = splitUrl(req.rawUrl);
      const header = headerValue(req.headers, "authorization");
      const presigned = query.some(([k]) => k === "X-Amz-Signature");
      if (config.mode === "open") {
        const akid = header
          ? /Credential=([^/,\s]+)/.exec(header)?.[1]
          : param(query, "X-Amz-Credential")?.split("/")[0];
        return { accessKeyId: akid ?? "anonymous" };
      }
      if (header) return verifyHeader(req, path, query, header, secrets, maxSkewMs);
      if (presigned) return verifyPresigned(req, path, query, secrets, maxSkewMs);
      if (query.some(([k]) => k === "AWSAccessKeyId")) return verifyPresignedV2(req, path, query, secrets);
      throw new AuthError(
        "AccessDenied",
        "MissingAuthenticationTokenException",
        "Request is not signed: anonymous access is forbidden",
      );
    },
  };
}

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(credential: string, jsonCode = "IncompleteSignatureException"): Scope {
  const parts = credential.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request" || !/^\d{8}$/.test(parts[1] ?? ""))
    throw new AuthError(
      "AuthorizationHeaderMalformed",
      jsonCode,
      `Credential must be <access key>/<yyyymmdd>/<region>/<service>/aws4_request, got "${credential}"`,
    );
  return { accessKeyId: parts[0]!, date: parts[1]!, region: parts[2]!, service: parts[3]! };
}

/** The credential scope's date must be the signing date's day. */
function checkScopeDate(scope: Scope, date: Date): void {
  if (date.toISOString().slice(0, 10).replace(/-/g, "") !== scope.date)
    throw new AuthError(
      "AuthorizationHeaderMalformed",
      "InvalidSignatureException",
      `The credential scope's date ${scope.date} is not the request's date`,
    );
}

function requireSigned(names: string[], header: string): void {
  if (!names.includes(header))
    throw new AuthError(
      "AccessDenied",
      "IncompleteSignatureException",
      `SignedHeaders must include ${header}`,
    );
}

function secretFor(secrets: Map<string, string>, accessKeyId: string): string {
  const secret = secrets.get(accessKeyId);
  if (secret === undefined)
    throw new AuthError(
      "InvalidAccessKeyId",
      "UnrecognizedClientException",
      `The AWS access key ID you provided does not exist in our records: ${accessKeyId}`,
    );
  return secret;
}

/** `20240102T030405Z` → Date. */
function parseAmzDate(value: string | undefined): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? "");
  if (!m)
    throw new AuthError(
      "AccessDenied",
      "IncompleteSignatureException",
      `X-Amz-Date must look like 20240102T030405Z, got "${value ?? ""}"`,
    );
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

async function verifyHeader(
  req: AuthRequest,
  path: string,
  query: [string, string][],
  header: string,
  secrets: Map<string, string>,
  maxSkewMs: number,
): Promise<AwsIdentity> {
  if (!header.startsWith(ALGORITHM + " "))
    throw new AuthError(
      "AccessDenied",
      "IncompleteSignatureException",
      `Only ${ALGORITHM} (Signature Version 4) is supported`,
    );
  const fields = new Map(
    header
      .slice(ALGORITHM.length + 1)
      .split(",")
      .map((f) => f.trim().split("=", 2) as [string, string]),
  );
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature)
    throw new AuthError(
      "AuthorizationHeaderMalformed",
      "IncompleteSignatureException",
      "Authorization header needs Credential, SignedHeaders and Signature",
    );
  const scope = parseCredential(credential);
  const secret = secretFor(secrets, scope.accessKeyId);
  const date = parseAmzDate(headerValue(req.headers, "x-amz-date"));
  if (Math.abs(Date.now() - date.getTime()) > maxSkewMs)
    throw new AuthError(
      "RequestTimeTooSkewed",
      "InvalidSignatureException",
      "The difference between the request time and the current time is too large",
    );
  checkScopeDate(scope, date);

  const names = signedHeaders.split(";");
  requireSigned(names, "host");
  const headers: Record<string, string> = {};
  for (const n of names) headers[n] = headerValue(req.headers, n) ?? "";
  const declaredSha = headers["x-amz-content-sha256"];
  if (req.body !== undefined) {
    // The signature covers the declared hash; the declared hash must cover the body (else the body of a
    // captured request could be swapped under its signature).
    if (declaredSha !== undefined && declaredSha !== createHash("sha256").update(req.body).digest("hex"))
      throw new AuthError(
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "The signed x-amz-content-sha256 does not match the request body",
      );
  } else requireSigned(names, "x-amz-content-sha256");
  const signer = newSigner(scope, secret);
  const signed = await signer.sign(
    new HttpRequest({
      method: req.method,
      hostname: "",
      path,
      query: toQueryBag(query),
      headers,
      body: declaredSha !== undefined ? undefined : (req.body ?? Buffer.alloc(0)),
    }),
    {
      signingDate: date,
      signingRegion: scope.region,
      signingService: scope.service,
      signableHeaders: new Set(names),
    },
  );
  const expected = /Signature=([0-9a-f]+)/.exec(String(signed.headers["authorization"]))?.[1] ?? "";
  if (!sameHex(expected, signature))
    throw new AuthError(
      "SignatureDoesNotMatch",
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );

  const signingKey = deriveSigningKey(secret, scope);
  const scopeString = `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
  const amzDate = headerValue(req.headers, "x-amz-date")!;
  return {
    accessKeyId: scope.accessKeyId,
    region: scope.region,
    service: scope.service,
    signature,
    chunkSignature: (previous, chunkHash) =>
      createHmac("sha256", signingKey)
        .update(
          `${ALGORITHM}-PAYLOAD\n${amzDate}\n${scopeString}\n${previous}\n${EMPTY_SHA256}\n${chunkHash}`,
        )
        .digest("hex"),
  };
}

async function verifyPresigned(
  req: AuthRequest,
  path: string,
  query: [string, string][],
  secrets: Map<string, string>,
  maxSkewMs: number,
): Promise<AwsIdentity> {
  if (param(query, "X-Amz-Algorithm") !== ALGORITHM)
    throw new AuthError(
      "AccessDenied",
      "IncompleteSignatureException",
      `X-Amz-Algorithm must be ${ALGORITHM}`,
    );
  const scope = parseCredential(param(query, "X-Amz-Credential") ?? "");
  const secret = secretFor(secrets, scope.accessKeyId);
  const date = parseAmzDate(param(query, "X-Amz-Date"));
  const expires = Number(param(query, "X-Amz-Expires"));
  if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGN_SECONDS)
    throw new AuthError(
      "AccessDenied",
      "IncompleteSignatureException",
      `X-Amz-Expires must be 1 to ${MAX_PRESIGN_SECONDS} seconds`,
    );
  if (Date.now() > date.getTime() + expires * 1000)
    throw new AuthError("AccessDenied", "ExpiredTokenException", "Request has expired");
  // A URL dated in the future would live longer than its X-Amz-Expires says.
  if (date.getTime() - Date.now() > maxSkewMs)
    throw new AuthError(
      "AccessDenied",
      "InvalidSignatureException",
      "Request is not valid yet: X-Amz-Date is in the future",
    );
  checkScopeDate(scope, date);
  const signature = param(query, "X-Amz-Signature") ?? "";
  const names = (param(query, "X-Amz-SignedHeaders") ?? "").split(";");
  requireSigned(names, "host");
  const headers: Record<string, string> = {};
  for (const n of names) headers[n] = headerValue(req.headers, n) ?? "";
  // Presigned S3 URLs never sign the payload; the header only feeds the payload hash, unsigned.
  headers["x-amz-content-sha256"] = headerValue(req.headers, "x-amz-content-sha256") ?? "UNSIGNED-PAYLOAD";
  const signer = newSigner(scope, secret);
  const presigned = await signer.presign(
    new HttpRequest({
      method: req.method,
      hostname: "",
      path,
      query: toQueryBag(query.filter(([k]) => k !== "X-Amz-Signature")),
      headers,
    }),
    {
      signingDate: date,
      expiresIn: expires,
      signingRegion: scope.region,
      signingService: scope.service,
      signableHeaders: new Set(names),
      unsignableHeaders: names.includes("x-amz-content-sha256")
        ? undefined
        : new Set(["x-amz-content-sha256"]),
      unhoistableHeaders: new Set([...names, "x-amz-content-sha256"]),
    },
  );
  const expected = String(presigned.query?.["X-Amz-Signature"] ?? "");
  if (!sameHex(expected, signature))
    throw new AuthError(
      "SignatureDoesNotMatch",
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );
  return { accessKeyId: scope.accessKeyId, region: scope.region, service: scope.service };
}

/** S3 sub-resources that SigV2 signs along with the path. */
const V2_SUBRESOURCES = new Set([
  "acl",
  "delete",
  "lifecycle",
  "location",
  "logging",
  "notification",
  "partNumber",
  "policy",
  "requestPayment",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-content-type",
  "response-expires",
  "tagging",
  "torrent",
  "uploadId",
  "uploads",
  "versionId",
  "versioning",
  "versions",
  "website",
]);

/**
 * S3's legacy query-string signature (HMAC-SHA1), kept because boto3's `generate_presigned_url` still
 * makes these by default for a custom endpoint. Path-style URLs only: the resource is the path as sent.
 */
async function verifyPresignedV2(
  req: AuthRequest,
  path: string,
  query: [string, string][],
  secrets: Map<string, string>,
): Promise<AwsIdentity> {
  const accessKeyId = param(query, "AWSAccessKeyId") ?? "";
  const secret = secretFor(secrets, accessKeyId);
  const expires = Number(param(query, "Expires"));
  if (!Number.isInteger(expires))
    throw new AuthError("AccessDenied", "IncompleteSignatureException", "Expires must be a Unix time");
  if (Date.now() / 1000 > expires)
    throw new AuthError("AccessDenied", "ExpiredTokenException", "Request has expired");
  // SigV2 URLs carry no start time: cap how far ahead they may expire, as SigV4 caps X-Amz-Expires.
  if (expires - Date.now() / 1000 > MAX_PRESIGN_SECONDS)
    throw new AuthError(
      "AccessDenied",
      "IncompleteSignatureException",
      `Expires may be at most ${MAX_PRESIGN_SECONDS} seconds (7 days) ahead`,
    );
  const amz = Object.keys(req.headers)
    .filter((h) => h.startsWith("x-amz-"))
    .sort()
    .map((h) => `${h}:${headerValue(req.headers, h)?.trim()}\n`)
    .join("");
  const sub = query
    .filter(([k]) => V2_SUBRESOURCES.has(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => (v === "" ? k : `${k}=${v}`))
    .join("&");
  const stringToSign = [
    req.method,
    headerValue(req.headers, "content-md5") ?? "",
    headerValue(req.headers, "content-type") ?? "",
    String(expires),
    `${amz}${path}${sub ? `?${sub}` : ""}`,
  ].join("\n");
  const expected = createHmac("sha1", secret).update(stringToSign).digest("base64");
  if (!sameHex(expected, param(query, "Signature") ?? ""))
    throw new AuthError(
      "SignatureDoesNotMatch",
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    );
  return { accessKeyId, service: "s3" };
}

function newSigner(scope: Scope, secret: string): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: scope.accessKeyId, secretAccessKey: secret },
    region: scope.region,
    service: scope.service,
    sha256: Sha256,
    // S3 signs the path exactly as sent; every other service normalises and encodes it again.
    uriEscapePath: scope.service !== "s3",
    applyChecksum: false,
  });
}

function deriveSigningKey(secret: string, scope: Scope): Buffer {
  let key = createHmac("sha256", `AWS4${secret}`).update(scope.date).digest();
  for (const part of [scope.region, scope.service, "aws4_request"])
    key = createHmac("sha256", key).update(part).digest();
  return key;
}

/** Constant-time comparison of two signatures. */
export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

/** Splits a raw URL into its undecoded path and its decoded query pairs (`+` stays `+`, as SigV4 wants). */
export function splitUrl(rawUrl: string): { path: string; query: [string, string][] } {
  const q = rawUrl.indexOf("?");
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query: [string, string][] = [];
  if (q >= 0)
    for (const pair of rawUrl.slice(q + 1).split("&")) {
      if (pair === "") continue;
      const eq = pair.indexOf("=");
      query.push([
        safeDecode(eq < 0 ? pair : pair.slice(0, eq)),
        eq < 0 ? "" : safeDecode(pair.slice(eq + 1)),
      ]);
    }
  return { path, query };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function param(query: [string, string][], name: string): string | undefined {
  return query.find(([k]) => k === name)?.[1];
}

function toQueryBag(query: [string, string][]): Record<string, string | string[]> {
  const bag: Record<string, string | string[]> = {};
  for (const [k, v] of query) {
    const prev = bag[k];
    bag[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return bag;
}
