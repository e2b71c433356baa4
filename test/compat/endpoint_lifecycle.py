#!/usr/bin/env python3
"""An endpoint's life as SageMaker runs it, driven with plain boto3 against kikitori:
  keep:   deleting the endpoint config and the model of a live endpoint leaves it serving (its own copy);
  update: UpdateEndpoint is blue/green: the old instances serve while the new ones start, then the new
          config serves (the no-op model server answers with its model files: blue.txt or green.txt);
  delete: DeleteEndpoint with work queued and running fails all of it, with failure documents at the
          failure path and messages on the error topic; a new endpoint of the same name runs none of it.

Environment (set by test/compat/endpoint-lifecycle.test.ts): KK_URL, KK_IMAGE, KK_AUDIO, KK_BLUE_TAR,
KK_GREEN_TAR, AWS_* credentials. Prints one JSON line with what it saw; exits non-zero on a mismatch.
"""
import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.exceptions import ClientError

url = os.environ["KK_URL"]
image = os.environ["KK_IMAGE"]
role = "arn:aws:iam::000000000000:role/kikitori-execution-role"
session = boto3.session.Session(region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
s3 = session.client("s3", endpoint_url=url)
sm = session.client("sagemaker", endpoint_url=url)
smr = session.client("sagemaker-runtime", endpoint_url=url)
sns = session.client("sns", endpoint_url=url)
report = {}
bucket = "lifecycle"


def check(cond, what):
    if not cond:
        raise SystemExit(f"{what}: {json.dumps(report, default=str)}")


def wait(cond, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    raise SystemExit(f"timed out waiting for {what}: {json.dumps(report, default=str)}")


def in_service(name):
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def model(name, tar_key, env=None):
    container = {"Image": image, "ModelDataUrl": f"s3://{bucket}/{tar_key}"}
    if env:
        container["Environment"] = env
    sm.create_model(ModelName=name, ExecutionRoleArn=role, PrimaryContainer=container)


def config(name, model_name, output, failure=None, error_topic=None):
    out = {"S3OutputPath": f"s3://{bucket}/{output}"}
    if failure:
        out["S3FailurePath"] = f"s3://{bucket}/{failure}"
    if error_topic:
        out["NotificationConfig"] = {"ErrorTopic": error_topic}
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model_name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
        AsyncInferenceConfig={"OutputConfig": out, "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1}},
    )


def invoke(endpoint):
    r = smr.invoke_endpoint_async(EndpointName=endpoint, InputLocation=f"s3://{bucket}/input/clip.wav", ContentType="audio/wav")
    return {"id": r["InferenceId"], "output": r["OutputLocation"], "failure": r.get("FailureLocation")}


def split(location):
    b, _, k = location[len("s3://"):].partition("/")
    return b, k


def read(location):
    b, k = split(location)
    try:
        return s3.get_object(Bucket=b, Key=k)["Body"].read()
    except ClientError as e:
        if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise


def result(inv):
    body = wait(lambda: read(inv["output"]), f"the output of {inv['id']}")
    return json.loads(body)


s3.create_bucket(Bucket=bucket)
s3.upload_file(os.environ["KK_AUDIO"], bucket, "input/clip.wav")
s3.upload_file(os.environ["KK_BLUE_TAR"], bucket, "models/blue.tar.gz")
s3.upload_file(os.environ["KK_GREEN_TAR"], bucket, "models/green.tar.gz")

# --- keep: the config and the model of a live endpoint are deleted; it keeps serving ---
model("keep-model", "models/blue.tar.gz")
config("keep-config", "keep-model", "keep-out")
sm.create_endpoint(EndpointName="keep", EndpointConfigName="keep-config")
in_service("keep")
sm.delete_endpoint_config(EndpointConfigName="keep-config")
sm.delete_model(ModelName="keep-model")
time.sleep(2)  # the instance manager reconciles every second: what it would stop, it has stopped by now
try:
    sm.describe_endpoint_config(EndpointConfigName="keep-config")
    check(False, "the endpoint config is deleted")
except ClientError as e:
    check(e.response["Error"]["Code"] == "ValidationException", f"DescribeEndpointConfig: {e}")
d = sm.describe_endpoint(EndpointName="keep")
report["keep"] = {
    "status": d["EndpointStatus"],
    "config": d["EndpointConfigName"],
    "instances": d["ProductionVariants"][0]["CurrentInstanceCount"],
    "output_path": d["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"],
    "served_by": result(invoke("keep"))["modelFiles"],
}
sm.delete_endpoint(EndpointName="keep")

# --- update: blue/green ---
model("bg-blue", "models/blue.tar.gz")
model("bg-green", "models/green.tar.gz", {"NOOP_STARTUP_MS": "8000"})
config("bg-blue", "bg-blue", "bg-out")
config("bg-green", "bg-green", "bg-out")
sm.create_endpoint(EndpointName="bg", EndpointConfigName="bg-blue")
in_service("bg")
sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-green")
during = sm.describe_endpoint(EndpointName="bg")
while_updating = [invoke("bg") for _ in range(3)]
served_while_updating = [result(i)["modelFiles"] for i in while_updating]
still = sm.describe_endpoint(EndpointName="bg")["EndpointStatus"]
try:
    sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-blue")
    second_update = "accepted"
except ClientError as e:
    second_update = e.response["Error"]["Message"]
in_service("bg")
after = sm.describe_endpoint(EndpointName="bg")
served_after = [result(invoke("bg"))["modelFiles"] for _ in range(2)]
report["update"] = {
    "during": {
        "status": during["EndpointStatus"],
        "config": during["EndpointConfigName"],
        "pending": during.get("PendingDeploymentSummary", {}).get("EndpointConfigName"),
    },
    "served_while_updating": served_while_updating,
    "status_after_those": still,
    "second_update": second_update,
    "after": {
        "status": after["EndpointStatus"],
        "config": after["EndpointConfigName"],
        "pending": after.get("PendingDeploymentSummary"),
        "instances": after["ProductionVariants"][0]["CurrentInstanceCount"],
    },
    "served_after": served_after,
}
sm.delete_endpoint(EndpointName="bg")


# --- delete: work queued and running is failed with documents and error-topic messages ---
class Receiver(BaseHTTPRequestHandler):
    messages = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.end_headers()
        if body["Type"] == "SubscriptionConfirmation":
            urllib.request.urlopen(body["SubscribeURL"]).read()
        else:
            Receiver.messages.append(json.loads(body["Message"]))

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
topic = sns.create_topic(Name="lifecycle-errors")["TopicArn"]
sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"http://127.0.0.1:{server.server_address[1]}/sns")
wait(
    lambda: all(s["SubscriptionArn"] != "PendingConfirmation" for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]),
    "the subscription's confirmation",
)
model("del-slow", "models/blue.tar.gz", {"NOOP_DELAY_MS": "4000"})
config("del-config", "del-slow", "del-out", "del-failed", topic)
sm.create_endpoint(EndpointName="del", EndpointConfigName="del-config")
in_service("del")
doomed = [invoke("del") for _ in range(4)]
time.sleep(1.5)  # one of them is running on the endpoint's one instance, three wait in its queue
sm.delete_endpoint(EndpointName="del")
documents = [json.loads(wait(lambda i=i: read(i["failure"]), f"the failure document of {i['id']}")) for i in doomed]
wait(lambda: len(Receiver.messages) >= len(doomed), "the error topic's messages")
try:
    wait(lambda: sm.describe_endpoint(EndpointName="del") and False, "the endpoint to go", timeout=30)
except ClientError as e:
    gone = e.response["Error"]["Code"]
# The same name again, with a fast model: none of the failed work runs on it.
model("del-fast", "models/green.tar.gz")
config("del-config-2", "del-fast", "del-out", "del-failed")
sm.create_endpoint(EndpointName="del", EndpointConfigName="del-config-2")
in_service("del")
fresh = result(invoke("del"))
time.sleep(2)
report["delete"] = {
    "ids": [i["id"] for i in doomed],
    "failure_locations": [i["failure"] for i in doomed],
    "documents": documents,
    "messages": Receiver.messages,
    "gone": gone,
    "outputs_after_recreate": [read(i["output"]) is not None for i in doomed],
    "fresh_served_by": fresh["modelFiles"],
}
sm.delete_endpoint(EndpointName="del")
server.shutdown()
print(json.dumps(report, default=str))
