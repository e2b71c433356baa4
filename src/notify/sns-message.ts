import { createHash, createSign, generateKeyPairSync, createPublicKey } from "node:crypto";
import forge from "node-forge";
import type { Invocation } from "../core/types.js";

/**
 * The message SageMaker Asynchronous Inference publishes to its SuccessTopic / ErrorTopic
 * (eventSource "aws:sagemaker", eventName "InferenceResult").
 */
export function sageMakerMessage(
  inv: Invocation,
  region: string,
  response?: { body: Buffer; contentType: string },
): Record<string, unknown> {
  const ok = inv.state === "Succeeded";
  const text = response?.body.toString("utf8");
  const isText = response !== undefined && Buffer.from(text!, "utf8").equals(response.body);
  return {
    awsRegion: region,
    eventTime: new Date(inv.finishedAt ?? Date.now()).toISOString(),
    receivedTime: new Date(inv.createdAt).toISOString(),
    invocationStatus: ok ? "Completed" : "Failed",
    requestParameters: {
      accept: inv.accept,
      contentType: inv.contentType,
      customAttributes: inv.customAttributes,
      endpointName: inv.endpoint,
      inputLocation: inv.inputLocation,
    },
    responseParameters: ok
      ? { contentType: response?.contentType ?? inv.accept, outputLocation: inv.outputLocation }
      : { contentType: "application/json", failureLocation: inv.failureLocation },
    ...(response
      ? {
          responseBody: isText
            ? { content: text, encoding: "STRING" }
            : { content: response.body.toString("base64"), encoding: "BASE64" },
        }
      : {}),
    inferenceId: inv.id,
    eventVersion: "1.0",
    eventSource: "aws:sagemaker",
    eventName: "InferenceResult",
    ...(ok ? {} : { failureReason: `${inv.error?.code ?? "Unknown"}: ${inv.error?.message ?? inv.state}` }),
  };
}

export type EnvelopeType = "Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation";

export interface Envelope {
  Type: EnvelopeType;
  MessageId: string;
  Token?: string;
  TopicArn: string;
  Subject?: string;
  Message: string;
  SubscribeURL?: string;
  Timestamp: string;
  SignatureVersion: "2";
  Signature: string;
  SigningCertURL: string;
  UnsubscribeURL?: string;
}

/** The string SNS signs: `Key\nValue\n` for each present field, in SNS's fixed order per message type. */
export function canonicalString(
  e: Omit<Envelope, "Signature" | "SignatureVersion" | "SigningCertURL">,
): string {
  const keys =
    e.Type === "Notification"
      ? (["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"] as const)
      : (["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"] as const);
  return keys
    .filter((k) => e[k] !== undefined)
    .map((k) => `${k}\n${e[k]}\n`)
    .join("");
}

/** SignatureVersion 2: RSA with SHA-256 over the canonical string, base64. */
export function signEnvelope(
  fields: Omit<Envelope, "Signature" | "SignatureVersion" | "SigningCertURL">,
  privateKeyPem: string,
  signingCertUrl: string,
): Envelope {
  const signature = createSign("RSA-SHA256").update(canonicalString(fields)).sign(privateKeyPem, "base64");
  return { ...fields, SignatureVersion: "2", Signature: signature, SigningCertURL: signingCertUrl };
}

export function newSigningKey(): string {
  return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
    type: "pkcs8",
    format: "pem",
  }) as string;
}

/** A short name of the key: the first 32 hex digits of its public key's SHA-256 (as in SNS's cert names). */
export const keyFingerprint = (privateKeyPem: string) =>
  createHash("sha256")
    .update(createPublicKey(privateKeyPem).export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 32);

/**
 * The X.509 certificate served at SigningCertURL: self-signed by the signing key, so a standard SNS message
 * validator (which reads the public key out of a certificate) verifies kikitori's envelopes. Every field is
 * derived from the key (the serial is its fingerprint, the validity fixed) and RSA PKCS#1 v1.5 signatures
 * are deterministic, so every process of one installation serves the very same certificate.
 */
export function signingCertificatePem(privateKeyPem: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = `01${keyFingerprint(privateKeyPem)}`;
  cert.validity.notBefore = new Date("2020-01-01T00:00:00Z");
  cert.validity.notAfter = new Date("2049-12-31T23:59:59Z");
  const name = [
    { name: "commonName", value: "sns.kikitori" },
    { name: "organizationName", value: "kikitori SimpleNotificationService" },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}
