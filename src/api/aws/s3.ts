import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { pipeline, Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { CodedError, KikitoriError, insufficientStorage } from "../../errors.js";
import type { ListResult, ObjectInfo, ObjectStore } from "../../storage/types.js";
import { parseRange } from "../../storage/range.js";
import { AwsChunkedDecoder, ChecksumCheck, declaredChecksums } from "./body.js";
import { AuthError, headerValue, splitUrl, type AwsIdentity } from "./sigv4.js";
import type { Service } from "../../core/service.js";
import type { Principal, Refusal } from "../../auth/types.js";
import { mayTouchObject, maySeeInvocation, uploadPrefix } from "../../auth/keys.js";
import { parseXml, s3Xml } from "./xml.js";
import { checkKeySegments } from "../../storage/validate.js";

export interface S3Deps {
  store: ObjectStore;
  /** For callers below admin: whose invocation an output object belongs to (they may read their own). */
  service?: Service;
  /**
   * Host names under which `<bucket>.<domain>` is virtual-host addressing. A host containing `.s3.`
   * (`bucket.s3.example.com`) is always treated so. @defaultValue ["localhost"]
   */
  virtualHostDomains?: string[];
  /** Largest single PutObject or part. @defaultValue 5 GiB (S3's limit) */
  maxObjectBytes?: number;
  /** Region reported by GetBucketLocation. @defaultValue "us-east-1" */
  region?: string;
}

/** A protocol-level S3 error (not from the store or auth). */
class S3Error extends CodedError {}

const notImplemented = (what: string) =>
  new S3Error("NotImplemented", 501, `kikitori's S3 API does not implement ${what}`);

/** Query parameters that are options of an operation, not sub-resources selecting another operation. */
const PLAIN_PARAMS = new Set([
  "x-id",
  "list-type",
  "prefix",
  "delimiter",
  "marker",
  "max-keys",
  "continuation-token",
  "start-after",
  "encoding-type",
  "fetch-owner",
  "uploadId",
  "partNumber",
  "versionId",
  "max-parts",
  "part-number-marker",
  "response-content-type",
  "response-content-disposition",
  "response-content-encoding",
  "response-content-language",
  "response-cache-control",
  "response-expires",
  // SigV2 query authentication
  "AWSAccessKeyId",
  "Signature",
  "Expires",
]);

interface S3Request {
  method: string;
  bucket?: string;
  key?: string;
  query: Map<string, string>;
  headers: IncomingHttpHeaders;
  raw: FastifyRequest;
  identity: AwsIdentity;
  principal: Principal;
}

/**
 * The S3 REST-XML protocol over an ObjectStore, as a Fastify plugin in its own encapsulated context (its
 * catch-all content-type parser leaves bodies as unread streams without touching other routes).
 * Registers `/*` for GET, HEAD, PUT, POST and DELETE; more specific routes (`/v1/...`) win.
 * Returns `handle`, for a `POST /` route registered elsewhere to pass on requests without `X-Amz-Target`
 * (virtual-host DeleteObjects and multipart calls).
 */
export async function registerS3(
  app: FastifyInstance,
  deps: S3Deps,
): Promise<{
  handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  refuse(request: FastifyRequest, reply: FastifyReply, r: Refusal): FastifyReply;
}> {
  // Returning the reply tells Fastify a streamed body is still being sent (else it would end the response).
  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    await handleS3(deps, request, reply);
    return reply;
  };
  /** An auth refusal as S3 words it: `<Error><Code>AccessDenied</Code>…`. */
  const refuse = (request: FastifyRequest, reply: FastifyReply, r: Refusal): FastifyReply => {
    const requestId = randomBytes(8).toString("hex").toUpperCase();
    reply.header("x-amz-request-id", requestId);
    sendError(
      request,
      reply,
      new S3Error(r.aws?.code ?? r.code, r.status, r.message),
      splitUrl(request.raw.url ?? "/").path,
      requestId,
    );
    return reply;
  };
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null));
    scope.route({
      method: ["GET", "HEAD", "PUT", "POST", "DELETE"],
      url: "/*",
      exposeHeadRoute: false,
      // Bucket operations need admin; object operations check the caller's prefix (authorizeS3).
      config: { auth: { allow: "any", credentials: "sigv4", sigv4Service: () => "s3", refuse } },
      // The AWS protocols are described by AWS; /openapi.json is the native API.
      schema: { hide: true },
      handler: handle,
    });
  });
  return { handle, refuse };
}

async function handleS3(deps: S3Deps, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const requestId = randomBytes(8).toString("hex").toUpperCase();
  const rawUrl = request.raw.url ?? "/";
  const { path, query } = splitUrl(rawUrl);
  reply.header("x-amz-request-id", requestId);
  try {
    const identity = request.aws!.identity;
    const target = addressing(
      path,
      headerValue(request.headers, "host") ?? "",
      deps.virtualHostDomains ?? ["localhost"],
    );
    const req: S3Request = {
      method: request.method,
      ...target,
      query: new Map(query),
      headers: request.headers,
      raw: request,
      identity,
      principal: request.principal!,
    };
    await authorizeS3(deps, req);
    await dispatch(deps, req, reply);
  } catch (err) {
    sendError(request, reply, err, path, requestId);
  }
}

/** Finds bucket and key from virtual-host or path-style addressing; refuses `..` segments. */
function addressing(rawPath: string, host: string, domains: string[]): { bucket?: string; key?: string } {
  const hostname = host.replace(/:\d+$/, "").toLowerCase();
  let bucket: string | undefined;
  const s3At = hostname.indexOf(".s3.");
  if (s3At > 0) bucket = hostname.slice(0, s3At);
  else
    for (const d of domains)
      if (hostname.endsWith("." + d)) {
        bucket = hostname.slice(0, -d.length - 1);
        break;
      }
  let rest = rawPath.replace(/^\//, "");
  if (bucket === undefined) {
    const slash = rest.indexOf("/");
    bucket = decode(slash < 0 ? rest : rest.slice(0, slash), "bucket name") || undefined;
    rest = slash < 0 ? "" : rest.slice(slash + 1);
  }
  const key = rest === "" ? undefined : decode(rest, "object key");
  if (key !== undefined) checkKeySegments(key);
  return { bucket, key };
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error("InvalidURI", 400, `Couldn't parse the ${what}: bad percent-encoding`);
  }
}

/**
 * Admins may do anything; other callers only object operations on keys under their upload prefix, and
 * reading (GET/HEAD) the output or failure document of an invocation they made.
 */
async function authorizeS3(deps: S3Deps, req: S3Request): Promise<void> {
  const p = req.principal;
  if (p.scope === "admin") return;
  const denied = (why: string) =>
    new S3Error("AccessDenied", 403, `${p.id} (scope ${p.scope}) may not ${why}`);
  if (req.bucket === undefined || req.key === undefined) throw denied("use bucket-level operations");
  if (mayTouchObject(p, req.key)) return;
  if ((req.method === "GET" || req.method === "HEAD") && (await ownsResult(deps, p, req.bucket, req.key)))
    return;
  throw denied(`access s3://${req.bucket}/${req.key.slice(0, 200)}: only keys under ${uploadPrefix(p)}`);
}

/** Whether the object is the output or failure document of one of `p`'s invocations. */
async function ownsResult(deps: S3Deps, p: Principal, bucket: string, key: string): Promise<boolean> {
  const m = /([^/]+?)(-error)?\.out$/.exec(key);
  if (!m || !deps.service) return false;
  const inv = await deps.service.findInvocation(m[1]!);
  const location = `s3://${bucket}/${key}`;
  return (
    !!inv && maySeeInvocation(p, inv) && (inv.outputLocation === location || inv.failureLocation === location)
  );
}

async function dispatch(deps: S3Deps, req: S3Request, reply: FastifyReply): Promise<void> {
  const { method, bucket, key, query } = req;
  const sub = [...query.keys()].find((k) => !PLAIN_PARAMS.has(k) && !k.startsWith("X-Amz-"));
  if (!bucket) {
    if (method === "GET" && !sub) return listBuckets(deps, reply);
    throw notImplemented(`${method} on the service root${sub ? ` (?${sub})` : ""}`);
  }
  if (key === undefined) {
    if (method === "GET" && sub === "location") return bucketLocation(deps, bucket, reply);
    if (sub === "delete" && method === "POST") return deleteObjects(deps, req, reply);
    if (sub) throw notImplemented(`${method} /${bucket}?${sub} (bucket sub-resource "${sub}")`);
    switch (method) {
      case "PUT":
        await deps.store.createBucket(bucket);
        await drain(req.raw.raw);
        reply.header("location", `/${bucket}`).code(200).send();
        return;
      case "HEAD":
        await deps.store.headBucket(bucket);
        reply
          .header("x-amz-bucket-region", deps.region ?? "us-east-1")
          .code(200)
          .send();
        return;
      case "DELETE":
        await deps.store.deleteBucket(bucket);
        reply.code(204).send();
        return;
      case "GET":
        return query.get("list-type") === "2"
          ? listObjectsV2(deps, req, reply)
          : listObjectsV1(deps, req, reply);
    }
    throw notImplemented(`${method} on a bucket`);
  }
  if (sub === "uploads" && method === "POST") return createMultipart(deps, req, reply);
  if (sub) throw notImplemented(`${method} /${bucket}/${key}?${sub} (object sub-resource "${sub}")`);
  const uploadId = query.get("uploadId");
  switch (method) {
    case "PUT":
      if (uploadId !== undefined) {
        if (req.headers["x-amz-copy-source"]) throw notImplemented("UploadPartCopy");
        return uploadPart(deps, req, uploadId, reply);
      }
      if (req.headers["x-amz-copy-source"]) return copyObject(deps, req, reply);
      return putObject(deps, req, reply);
    case "GET":
      if (uploadId !== undefined) return listParts(deps, req, uploadId, reply);
      return getObject(deps, req, reply, false);
    case "HEAD":
      return getObject(deps, req, reply, true);
    case "DELETE":
      if (uploadId !== undefined) {
        await deps.store.abortMultipartUpload(uploadId);
      } else {
        await deps.store.headBucket(bucket);
        await deps.store.deleteObject(bucket, key);
      }
      reply.code(204).send();
      return;
    case "POST":
      if (uploadId !== undefined) return completeMultipart(deps, req, uploadId, reply);
      throw notImplemented("POST object (browser form upload)");
  }
  throw notImplemented(`${method} on an object`);
}

// --- buckets ---

async function listBuckets(deps: S3Deps, reply: FastifyReply): Promise<void> {
  const buckets = await deps.store.listBuckets();
  sendXml(
    reply,
    200,
    s3Xml("ListAllMyBucketsResult", {
      Owner: OWNER,
      Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: b.created.toISOString() })) },
    }),
  );
}

async function bucketLocation(deps: S3Deps, bucket: string, reply: FastifyReply): Promise<void> {
  await deps.store.headBucket(bucket);
  const region = deps.region ?? "us-east-1";
  // S3 answers an empty LocationConstraint for us-east-1.
  sendXml(reply, 200, s3Xml("LocationConstraint", { "#text": region === "us-east-1" ? "" : region }));
}

const OWNER = { ID: "kikitori", DisplayName: "kikitori" };

function listParams(req: S3Request) {
  const q = req.query;
  const maxKeysRaw = q.get("max-keys");
  const maxKeys = maxKeysRaw === undefined ? 1000 : Number(maxKeysRaw);
  if (!Number.isInteger(maxKeys) || maxKeys < 0)
    throw new S3Error("InvalidArgument", 400, `max-keys must be a non-negative integer, got "${maxKeysRaw}"`);
  const encodingType = q.get("encoding-type");
  if (encodingType !== undefined && encodingType !== "url")
    throw new S3Error("InvalidArgument", 400, `encoding-type must be "url", got "${encodingType}"`);
  const enc = (s: string | undefined) =>
    s === undefined ? undefined : encodingType ? encodeURIComponent(s) : s;
  return {
    prefix: q.get("prefix") ?? "",
    delimiter: q.get("delimiter") || undefined,
    maxKeys: Math.min(maxKeys, 1000),
    encodingType,
    enc,
  };
}

function contents(r: ListResult, enc: (s: string) => string | undefined, owner: boolean) {
  return r.objects.map((o) => ({
    Key: enc(o.key),
    LastModified: o.lastModified.toISOString(),
    ETag: `"${o.etag}"`,
    Size: o.size,
    StorageClass: "STANDARD",
    ...(owner ? { Owner: OWNER } : {}),
  }));
}

async function listObjectsV2(deps: S3Deps, req: S3Request, reply: FastifyReply): Promise<void> {
  const p = listParams(req);
  const token = req.query.get("continuation-token");
  const startAfter = req.query.get("start-after");
  let after = startAfter;
  if (token !== undefined) {
    after = Buffer.from(token, "base64url").toString("utf8");
    if (!token || Buffer.from(after, "utf8").toString("base64url") !== token)
      throw new S3Error("InvalidArgument", 400, "The continuation token provided is incorrect");
  }
  const r = await deps.store.listObjects(req.bucket!, {
    prefix: p.prefix,
    delimiter: p.delimiter,
    startAfter: after,
    maxKeys: p.maxKeys,
  });
  sendXml(
    reply,
    200,
    s3Xml("ListBucketResult", {
      Name: req.bucket,
      Prefix: p.enc(p.prefix),
      Delimiter: p.enc(p.delimiter),
      StartAfter: p.enc(startAfter),
      ContinuationToken: token,
      NextContinuationToken:
        r.truncated && r.nextStartAfter ? Buffer.from(r.nextStartAfter).toString("base64url") : undefined,
      KeyCount: r.objects.length + r.commonPrefixes.length,
      MaxKeys: p.maxKeys,
      EncodingType: p.encodingType,
      IsTruncated: r.truncated,
      Contents: contents(r, (s) => p.enc(s), req.query.get("fetch-owner") === "true"),
      CommonPrefixes: r.commonPrefixes.map((c) => ({ Prefix: p.enc(c) })),
    }),
  );
}

async function listObjectsV1(deps: S3Deps, req: S3Request, reply: FastifyReply): Promise<void> {
  const p = listParams(req);
  const marker = req.query.get("marker");
  const r = await deps.store.listObjects(req.bucket!, {
    prefix: p.prefix,
    delimiter: p.delimiter,
    startAfter: marker,
    maxKeys: p.maxKeys,
  });
  sendXml(
    reply,
    200,
    s3Xml("ListBucketResult", {
      Name: req.bucket,
      Prefix: p.enc(p.prefix),
      Marker: p.enc(marker ?? ""),
      NextMarker: r.truncated ? p.enc(r.nextStartAfter) : undefined,
      MaxKeys: p.maxKeys,
      Delimiter: p.enc(p.delimiter),
      EncodingType: p.encodingType,
      IsTruncated: r.truncated,
      Contents: contents(r, (s) => p.enc(s), true),
      CommonPrefixes: r.commonPrefixes.map((c) => ({ Prefix: p.enc(c) })),
    }),
  );
}

async function deleteObjects(deps: S3Deps, req: S3Request, reply: FastifyReply): Promise<void> {
  const doc = parseXml((await readBody(req, 2 * 1024 * 1024)).toString("utf8"));
  const del = doc["Delete"] as { Object?: { Key?: string }[]; Quiet?: string } | undefined;
  if (!del) throw new S3Error("MalformedXML", 400, "The body must be a <Delete> document");
  const objects = del.Object ?? [];
  if (objects.length > 1000)
    throw new S3Error("MalformedXML", 400, "At most 1000 objects may be deleted at once");
  await deps.store.headBucket(req.bucket!);
  const deleted: { Key: string }[] = [];
  const errors: { Key: string; Code: string; Message: string }[] = [];
  for (const o of objects) {
    const key = String(o.Key ?? "");
    try {
      checkKeySegments(key);
      await deps.store.deleteObject(req.bucket!, key);
      deleted.push({ Key: key });
    } catch (err) {
      const e = err as { code?: string; message: string };
      errors.push({ Key: key, Code: e.code ?? "InternalError", Message: e.message });
    }
  }
  const quiet = String(del.Quiet ?? "").toLowerCase() === "true";
  sendXml(reply, 200, s3Xml("DeleteResult", { Deleted: quiet ? [] : deleted, Error: errors }));
}

// --- objects ---

function userMetadata(headers: IncomingHttpHeaders): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (name.startsWith("x-amz-meta-") && value !== undefined)
      meta[name.slice("x-amz-meta-".length)] = Array.isArray(value) ? value.join(",") : value;
  return meta;
}

/** The request body as the client meant it: aws-chunked framing removed, every declared digest checked. */
function requestBody(req: S3Request): Readable {
  const h = req.headers;
  const raw: Readable =
    Buffer.isBuffer(req.raw.body) || typeof req.raw.body === "string"
      ? Readable.from([Buffer.from(req.raw.body)])
      : req.raw.raw;
  const sha = headerValue(h, "x-amz-content-sha256") ?? "";
  const encoding = headerValue(h, "content-encoding") ?? "";
  const chunked = sha.startsWith("STREAMING-") || encoding.split(",").some((e) => e.trim() === "aws-chunked");
  const declared = headerValue(h, "x-amz-decoded-content-length");
  if (chunked && declared === undefined)
    throw new S3Error("MissingContentLength", 411, "An aws-chunked body needs x-amz-decoded-content-length");
  const signedChunks = sha.startsWith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  if (sha === "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD" || sha.startsWith("STREAMING-AWS4-ECDSA"))
    throw notImplemented("SigV4a (ECDSA) streaming signatures");
  const decoder = chunked
    ? new AwsChunkedDecoder({
        decodedLength: Number(declared),
        seedSignature: signedChunks ? req.identity.signature : undefined,
        chunkSignature: signedChunks ? req.identity.chunkSignature : undefined,
      })
    : undefined;
  const check = new ChecksumCheck(() => {
    const t = decoder?.trailers ?? {};
    return {
      "content-md5": headerValue(h, "content-md5"),
      "content-sha256": /^[0-9a-f]{64}$/.test(sha) ? sha : undefined,
      crc32: headerValue(h, "x-amz-checksum-crc32") ?? t["x-amz-checksum-crc32"],
      sha1: headerValue(h, "x-amz-checksum-sha1") ?? t["x-amz-checksum-sha1"],
      sha256: headerValue(h, "x-amz-checksum-sha256") ?? t["x-amz-checksum-sha256"],
    };
  }, declaredChecksums(h));
  // Errors travel down the pipeline to the store, which then discards what it wrote.
  const noop = () => {};
  return decoder ? pipeline(raw, decoder, check, noop) : pipeline(raw, check, noop);
}

async function putObject(deps: S3Deps, req: S3Request, reply: FastifyReply): Promise<void> {
  const info = await deps.store.putObject(req.bucket!, req.key!, requestBody(req), {
    contentType: headerValue(req.headers, "content-type"),
    metadata: userMetadata(req.headers),
    maxBytes: deps.maxObjectBytes ?? 5 * 1024 ** 3,
  });
  echoChecksums(req, reply);
  reply.header("etag", `"${info.etag}"`).code(200).send();
}

/** Clients that sent a flexible checksum expect it back. */
function echoChecksums(req: S3Request, reply: FastifyReply): void {
  for (const a of ["crc32", "sha1", "sha256", "crc32c"]) {
    const v = headerValue(req.headers, `x-amz-checksum-${a}`);
    if (v) reply.header(`x-amz-checksum-${a}`, v);
  }
}

async function getObject(
  deps: S3Deps,
  req: S3Request,
  reply: FastifyReply,
  headOnly: boolean,
): Promise<void> {
  const bucket = req.bucket!;
  const key = req.key!;
  const h = req.headers;
  const range = headOnly ? undefined : parseRange(headerValue(h, "range"));
  const { info, body, served } = headOnly
    ? { info: await deps.store.headObject(bucket, key), body: undefined, served: undefined }
    : await deps.store.getObject(bucket, key, range).then((r) => ({ ...r, served: r.range }));
  const status = preconditions(h, info);
  if (status !== 200) {
    body?.destroy();
    if (status === 412)
      throw new S3Error(
        "PreconditionFailed",
        412,
        "At least one of the preconditions you specified did not hold",
      );
    objectHeaders(reply, info);
    reply.code(304).send();
    return;
  }
  objectHeaders(reply, info);
  for (const [param, header] of [
    ["response-content-type", "content-type"],
    ["response-content-disposition", "content-disposition"],
    ["response-content-encoding", "content-encoding"],
    ["response-content-language", "content-language"],
    ["response-cache-control", "cache-control"],
    ["response-expires", "expires"],
  ] as const) {
    const v = req.query.get(param);
    if (v === undefined) continue;
    // A header value cannot carry line breaks or non-Latin-1 text (response splitting): refuse, by name.
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(v))
      throw new S3Error(
        "InvalidArgument",
        400,
        `${param} must not contain control characters or line breaks`,
      );
    reply.header(header, v);
  }
  if (served) {
    reply.header("content-range", `bytes ${served.start}-${served.end}/${info.size}`);
    reply.header("content-length", String(served.end - served.start + 1));
    reply.code(206);
  } else {
    reply.header("content-length", String(info.size));
    reply.code(200);
  }
  reply.send(headOnly ? undefined : body);
}

function objectHeaders(reply: FastifyReply, info: ObjectInfo): void {
  reply.header("etag", `"${info.etag}"`);
  reply.header("last-modified", info.lastModified.toUTCString());
  reply.header("content-type", info.contentType);
  reply.header("accept-ranges", "bytes");
  for (const [k, v] of Object.entries(info.metadata)) reply.header(`x-amz-meta-${k}`, v);
}

/** If-Match / If-Unmodified-Since → 412; If-None-Match / If-Modified-Since → 304. */
function preconditions(h: IncomingHttpHeaders, info: ObjectInfo): 200 | 304 | 412 {
  const etagMatches = (list: string) =>
    list.split(",").some((t) => {
      const v = t.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
      return v === "*" || v === info.etag;
    });
  const modified = Math.floor(info.lastModified.getTime() / 1000) * 1000;
  const ifMatch = headerValue(h, "if-match");
  const ifNoneMatch = headerValue(h, "if-none-match");
  const ifUnmodified = Date.parse(headerValue(h, "if-unmodified-since") ?? "");
  const ifModified = Date.parse(headerValue(h, "if-modified-since") ?? "");
  if (ifMatch !== undefined ? !etagMatches(ifMatch) : !Number.isNaN(ifUnmodified) && modified > ifUnmodified)
    return 412;
  if (
    ifNoneMatch !== undefined ? etagMatches(ifNoneMatch) : !Number.isNaN(ifModified) && modified <= ifModified
  )
    return 304;
  return 200;
}

async function copyObject(deps: S3Deps, req: S3Request, reply: FastifyReply): Promise<void> {
  const source = headerValue(req.headers, "x-amz-copy-source") ?? "";
  const [pathPart, queryPart] = source.split("?", 2);
  if (queryPart && !/^versionId=null$/.test(queryPart))
    throw notImplemented("copying a specific object version");
  const decoded = decode(pathPart!.replace(/^\//, ""), "x-amz-copy-source");
  const slash = decoded.indexOf("/");
  if (slash <= 0 || slash === decoded.length - 1)
    throw new S3Error(
      "InvalidArgument",
      400,
      `x-amz-copy-source must be <bucket>/<key>, got "${source.slice(0, 200)}"`,
    );
  const srcBucket = decoded.slice(0, slash);
  const srcKey = decoded.slice(slash + 1);
  checkKeySegments(srcKey);
  await drain(req.raw.raw);
  const replace = headerValue(req.headers, "x-amz-metadata-directive") === "REPLACE";
  const info = await deps.store.copyObject(
    srcBucket,
    srcKey,
    req.bucket!,
    req.key!,
    replace
      ? { contentType: headerValue(req.headers, "content-type"), metadata: userMetadata(req.headers) }
      : undefined,
  );
  sendXml(
    reply,
    200,
    s3Xml("CopyObjectResult", { LastModified: info.lastModified.toISOString(), ETag: `"${info.etag}"` }),
  );
}

// --- multipart ---

async function createMultipart(deps: S3Deps, req: S3Request, reply: FastifyReply): Promise<void> {
  await drain(req.raw.raw);
  const uploadId = await deps.store.createMultipartUpload(req.bucket!, req.key!, {
    contentType: headerValue(req.headers, "content-type"),
    metadata: userMetadata(req.headers),
  });
  const algo = headerValue(req.headers, "x-amz-checksum-algorithm");
  if (algo) reply.header("x-amz-checksum-algorithm", algo);
  sendXml(
    reply,
    200,
    s3Xml("InitiateMultipartUploadResult", { Bucket: req.bucket, Key: req.key, UploadId: uploadId }),
  );
}

function partNumber(req: S3Request): number {
  const raw = req.query.get("partNumber");
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 10000)
    throw new S3Error(
      "InvalidArgument",
      400,
      `partNumber must be an integer from 1 to 10000, got "${raw ?? ""}"`,
    );
  return n;
}

async function uploadPart(
  deps: S3Deps,
  req: S3Request,
  uploadId: string,
  reply: FastifyReply,
): Promise<void> {
  const n = partNumber(req);
  const body = requestBody(req);
  const part = await deps.store.uploadPart(uploadId, n, body);
  echoChecksums(req, reply);
  reply.header("etag", `"${part.etag}"`).code(200).send();
}

async function completeMultipart(
  deps: S3Deps,
  req: S3Request,
  uploadId: string,
  reply: FastifyReply,
): Promise<void> {
  const doc = parseXml((await readBody(req, 4 * 1024 * 1024)).toString("utf8"));
  const parts = (
    doc["CompleteMultipartUpload"] as { Part?: { PartNumber?: string; ETag?: string }[] } | undefined
  )?.Part;
  if (!parts)
    throw new S3Error(
      "MalformedXML",
      400,
      "The body must be a <CompleteMultipartUpload> document with <Part>s",
    );
  const info = await deps.store.completeMultipartUpload(
    uploadId,
    parts.map((p) => ({ partNumber: Number(p.PartNumber), etag: String(p.ETag ?? "") })),
  );
  sendXml(
    reply,
    200,
    s3Xml("CompleteMultipartUploadResult", {
      Location: `/${info.bucket}/${encodeURIComponent(info.key)}`,
      Bucket: info.bucket,
      Key: info.key,
      ETag: `"${info.etag}"`,
    }),
  );
}

async function listParts(deps: S3Deps, req: S3Request, uploadId: string, reply: FastifyReply): Promise<void> {
  const parts = await deps.store.listParts(uploadId);
  sendXml(
    reply,
    200,
    s3Xml("ListPartsResult", {
      Bucket: req.bucket,
      Key: req.key,
      UploadId: uploadId,
      IsTruncated: false,
      Part: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"`, Size: p.size })),
    }),
  );
}

// --- plumbing ---

async function readBody(req: S3Request, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of requestBody(req)) {
    size += (c as Buffer).length;
    if (size > limit)
      throw new S3Error("MaxMessageLengthExceeded", 400, `The request body exceeds ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Consumes a body we ignore, so the connection can carry the next request. */
async function drain(body: Readable): Promise<void> {
  if (body.readableEnded) return;
  for await (const _ of body);
}

function sendXml(reply: FastifyReply, status: number, xml: string): void {
  reply.code(status).header("content-type", "application/xml").send(xml);
}

function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  err: unknown,
  resource: string,
  requestId: string,
): void {
  let code = "InternalError";
  let status = 500;
  let message = "We encountered an internal error. Please try again.";
  err = insufficientStorage(err) ?? err;
  if (err instanceof CodedError || err instanceof AuthError || err instanceof KikitoriError) {
    code = err.code;
    status = err.status;
    message = err.message;
  } else request.log.error({ err }, "s3: internal error");
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  // An unread request body would otherwise be parsed as the next request on this connection.
  if (!request.raw.readableEnded) reply.header("connection", "close");
  if (request.method === "HEAD") {
    reply.code(status).header("x-amz-error-code", code).send();
    return;
  }
  sendXml(
    reply,
    status,
    s3Xml("Error", { Code: code, Message: message, Resource: resource, RequestId: requestId }, false),
  );
}
