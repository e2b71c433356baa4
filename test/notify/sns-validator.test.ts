import { test, after } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { createServer, globalAgent } from "node:https";
import type { AddressInfo } from "node:net";
import { X509Certificate } from "node:crypto";
import forge from "node-forge";
import MessageValidator from "sns-validator";
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from "@aws-sdk/client-sns";
import { waitFor } from "../helpers/server.js";
import { startNotifyServer } from "./receiver.js";

/**
 * AWS's own SNS message validator (npm `sns-validator`, aws/aws-js-sns-message-validator) verifies
 * kikitori's notifications. It fetches SigningCertURL over https only, so kikitori runs here as it would in
 * production behind a TLS proxy: KIKITORI_PUBLIC_URL is the proxy's https URL, and the validator trusts the
 * proxy's (test-made) TLS certificate. Its host pattern is the documented way to name a non-AWS SNS host.
 */

function tlsCertificate(): { key: string; cert: string } {
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3600_000);
  const name = [{ name: "commonName", value: "127.0.0.1" }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { key: forge.pki.privateKeyToPem(keys.privateKey), cert: forge.pki.certificateToPem(cert) };
}

// The TLS proxy: listening first, so kikitori can be told its URL; it forwards to kikitori once that runs.
const tls = tlsCertificate();
let upstream = "";
const proxy = createServer(tls, (req, res) => {
  const u = new URL(req.url ?? "/", upstream);
  const out = httpRequest(u, { method: req.method, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  req.pipe(out);
});
await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
const proxyUrl = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
const { k, receiver } = await startNotifyServer({ publicUrl: proxyUrl });
upstream = k.url;
globalAgent.options.ca = tls.cert;
after(() => {
  proxy.closeAllConnections();
  proxy.close();
});

const validate = (message: unknown) =>
  new Promise<unknown>((resolve, reject) =>
    new MessageValidator(/^127\.0\.0\.1:\d+$/).validate(message as Record<string, unknown>, (err, m) =>
      err ? reject(err) : resolve(m),
    ),
  );

test("sns-validator (AWS's validator library) verifies kikitori's confirmation and notification", async () => {
  const sns = new SNSClient({
    endpoint: k.url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "validated" }));
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: "http", Endpoint: receiver.url }));
  await waitFor(() => receiver.received.length >= 1, 10_000, "the SubscriptionConfirmation");
  const confirmation = JSON.parse(receiver.received[0]!.body);
  assert.match(
    confirmation.SigningCertURL,
    /^https:\/\/127\.0\.0\.1:\d+\/sns\/SimpleNotificationService-[0-9a-f]{32}\.pem$/,
  );
  await validate(confirmation);
  assert.equal((await fetch(confirmation.SubscribeURL.replace(proxyUrl, k.url))).status, 200);

  await sns.send(new PublishCommand({ TopicArn, Message: "the transcript is ready", Subject: "done" }));
  await waitFor(() => receiver.received.length >= 2, 10_000, "the Notification");
  const notification = JSON.parse(receiver.received[1]!.body);
  assert.equal(notification.Type, "Notification");
  await validate(notification);

  // The certificate is a real X.509 certificate for the signing key, and the validator does check it.
  const pem = await (await fetch(notification.SigningCertURL.replace(proxyUrl, k.url))).text();
  const cert = new X509Certificate(pem);
  assert.match(cert.subject, /CN=sns\.kikitori/);
  assert.ok(cert.verify(cert.publicKey), "self-signed by the signing key");
  await assert.rejects(validate({ ...notification, Message: "tampered" }), /signature is invalid/);
  await assert.rejects(
    validate({ ...notification, SigningCertURL: notification.SigningCertURL.replace("https:", "http:") }),
    /invalid domain/,
  );
});
