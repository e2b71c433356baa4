#!/usr/bin/env python3
"""The SageMaker Asynchronous Inference notebook flow, with plain boto3 pointed at kikitori.

Environment (set by test/compat/boto3.test.ts):
  KK_URL         kikitori's URL (endpoint_url for every client)
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION   the server's credentials
  KK_NAME        resource-name prefix
  KK_IMAGE       PrimaryContainer.Image
  KK_MODEL_TAR   a local model.tar.gz to upload as ModelDataUrl
  KK_AUDIO       a local audio file to transcribe
  KK_CHECK       "noop" (the no-op model server's JSON), "whisper" (an English transcript equal to
                 KK_REFERENCE up to case and punctuation) or "japanese" (a transcript in Japanese script)
  KK_REFERENCE   the reference transcript, for KK_CHECK=whisper
Prints one JSON line with what it saw; exits non-zero on any mismatch.
"""
import json
import os
import re
import sys
import time

import boto3
from botocore.exceptions import ClientError

url = os.environ["KK_URL"]
name = os.environ["KK_NAME"]
region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
session = boto3.session.Session(region_name=region)
s3 = session.client("s3", endpoint_url=url)
sm = session.client("sagemaker", endpoint_url=url)
smr = session.client("sagemaker-runtime", endpoint_url=url)
aas = session.client("application-autoscaling", endpoint_url=url)
sts = session.client("sts", endpoint_url=url)
iam = session.client("iam", endpoint_url=url)

report = {}

# What notebooks do first: who am I, and which role do I pass to CreateModel.
ident = sts.get_caller_identity()
role = iam.get_role(RoleName="kikitori-execution-role")["Role"]["Arn"]
report["account"] = ident["Account"]
report["role"] = role

bucket = f"{name}-bucket"
s3.create_bucket(Bucket=bucket)
s3.upload_file(os.environ["KK_MODEL_TAR"], bucket, "models/model.tar.gz")
audio_key = "input/" + os.path.basename(os.environ["KK_AUDIO"])
s3.upload_file(os.environ["KK_AUDIO"], bucket, audio_key)

model_arn = sm.create_model(
    ModelName=name,
    ExecutionRoleArn=role,
    PrimaryContainer={
        "Image": os.environ["KK_IMAGE"],
        "ModelDataUrl": f"s3://{bucket}/models/model.tar.gz",
        "Environment": {"KIKITORI_TEST": "1"},
    },
)["ModelArn"]
sm.create_endpoint_config(
    EndpointConfigName=name,
    ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
    ],
    AsyncInferenceConfig={
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
        "OutputConfig": {
            "S3OutputPath": f"s3://{bucket}/output",
            "S3FailurePath": f"s3://{bucket}/failure",
        },
    },
)
endpoint_arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=name)["EndpointArn"]
report["endpoint_arn"] = endpoint_arn
sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
desc = sm.describe_endpoint(EndpointName=name)
assert desc["EndpointStatus"] == "InService", desc
variant = desc["ProductionVariants"][0]
report["instances"] = [variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]]
assert desc["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 2

resource_id = f"endpoint/{name}/variant/AllTraffic"
aas.register_scalable_target(
    ServiceNamespace="sagemaker",
    ResourceId=resource_id,
    ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    MinCapacity=0,
    MaxCapacity=2,
)
aas.put_scaling_policy(
    PolicyName=f"{name}-backlog",
    ServiceNamespace="sagemaker",
    ResourceId=resource_id,
    ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    PolicyType="TargetTrackingScaling",
    TargetTrackingScalingPolicyConfiguration={
        "TargetValue": 5.0,
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": name}],
            "Statistic": "Average",
        },
        "ScaleInCooldown": 600,
        "ScaleOutCooldown": 60,
    },
)
targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource_id])["ScalableTargets"]
assert targets and targets[0]["MinCapacity"] == 0, targets
policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingPolicies"]
assert [p["PolicyName"] for p in policies] == [f"{name}-backlog"], policies

started = time.time()
res = smr.invoke_endpoint_async(
    EndpointName=name,
    InputLocation=f"s3://{bucket}/{audio_key}",
    ContentType="audio/wav",
    InvocationTimeoutSeconds=600,
)
output = res["OutputLocation"]
report["inference_id"] = res["InferenceId"]
assert output == f"s3://{bucket}/output/{res['InferenceId']}.out", res
assert res["FailureLocation"] == f"s3://{bucket}/failure/{res['InferenceId']}-error.out", res

# The notebook's polling loop: head_object until the output exists (and fail fast on the failure object).
out_key = output[len(f"s3://{bucket}/"):]
fail_key = res["FailureLocation"][len(f"s3://{bucket}/"):]
deadline = time.time() + 300
while True:
    try:
        s3.head_object(Bucket=bucket, Key=out_key)
        break
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    try:
        body = s3.get_object(Bucket=bucket, Key=fail_key)["Body"].read()
        sys.exit(f"invocation failed: {body.decode()}")
    except ClientError:
        pass
    if time.time() > deadline:
        sys.exit("timed out waiting for the output object")
    time.sleep(0.2)
report["seconds_to_output"] = round(time.time() - started, 2)
local = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"{name}.out")
s3.download_file(bucket, out_key, local)
with open(local, "rb") as f:
    result = f.read().decode("utf-8")

if os.environ["KK_CHECK"] == "noop":
    doc = json.loads(result)
    audio_size = os.path.getsize(os.environ["KK_AUDIO"])
    assert doc["bytes"] == audio_size, (doc, audio_size)
    assert doc["contentType"] == "audio/wav", doc
    assert "weights.txt" in doc["modelFiles"], doc  # the model.tar.gz was unpacked into SM_MODEL_DIR
    report["model_files"] = doc["modelFiles"]
else:
    try:
        text = json.loads(result).get("text", "")
    except json.JSONDecodeError:
        text = result
    report["transcript"] = text.strip()
    if os.environ["KK_CHECK"] == "japanese":
        report["language"] = json.loads(result).get("language")
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text), text
    else:
        norm = lambda s: re.sub(r"[^a-z0-9 ]", "", re.sub(r"\s+", " ", s.lower())).strip()
        assert norm(text) == norm(os.environ["KK_REFERENCE"]), (text, os.environ["KK_REFERENCE"])

# Unsupported and missing things answer in SageMaker's own error shape.
try:
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sys.exit("a second create_endpoint with the same name was accepted")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationException", e.response

aas.deregister_scalable_target(
    ServiceNamespace="sagemaker", ResourceId=resource_id, ScalableDimension="sagemaker:variant:DesiredInstanceCount"
)
sm.delete_endpoint(EndpointName=name)
sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
sm.delete_endpoint_config(EndpointConfigName=name)
sm.delete_model(ModelName=name)
try:
    sm.describe_model(ModelName=name)
    sys.exit("describe_model found a deleted model")
except ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationException", e.response
print(json.dumps(report))
