#!/usr/bin/env python3
"""A SageMaker Asynchronous Inference notebook for Whisper, written for AWS and run unmodified: only the
environment differs (what `kikitori aws-env` prints: AWS_ENDPOINT_URL, credentials, region, and
SAGEMAKER_USER_CONFIG_OVERRIDE naming the SDK config file with the default bucket). The files it uploads
(model.tar.gz, audio.wav) are in the working directory, as beside a notebook.
Prints one JSON line with what it saw (the last cell).
"""
import json

import boto3
import sagemaker
from sagemaker.async_inference import AsyncInferenceConfig
from sagemaker.async_inference.waiter_config import WaiterConfig
from sagemaker.model import Model
from sagemaker.predictor import Predictor

# --- cell: session, bucket, role ---
sess = sagemaker.Session()
bucket = sess.default_bucket()
prefix = "whisper-async"
region = sess.boto_region_name
iam = boto3.client("iam")
role = iam.get_role(RoleName="SageMaker-local")["Role"]["Arn"]

# --- cell: upload the model and the audio ---
model_uri = sess.upload_data("model.tar.gz", bucket=bucket, key_prefix=f"{prefix}/model")
audio_uri = sess.upload_data("audio.wav", bucket=bucket, key_prefix=f"{prefix}/input")

# --- cell: the model ---
image_uri = f"123456789012.dkr.ecr.{region}.amazonaws.com/kikitori/whisper:latest"
model_name = "whisper-async-model"
sess.create_model(
    model_name,
    role,
    container_defs={"Image": image_uri, "ModelDataUrl": model_uri, "Environment": {"TS_DEFAULT_WORKERS_PER_MODEL": "1"}},
)

# --- cell: deploy with an asynchronous inference config ---
endpoint_name = "whisper-async-endpoint"
model = Model(
    image_uri=image_uri,
    model_data=model_uri,
    role=role,
    name=model_name,
    predictor_cls=Predictor,
    sagemaker_session=sess,
)
async_config = AsyncInferenceConfig(
    output_path=f"s3://{bucket}/{prefix}/output",
    failure_path=f"s3://{bucket}/{prefix}/failure",
    max_concurrent_invocations_per_instance=2,
)
predictor = model.deploy(
    initial_instance_count=1,
    instance_type="ml.g5.xlarge",
    async_inference_config=async_config,
    endpoint_name=endpoint_name,
)

# --- cell: invoke and wait for the result ---
response = predictor.predict_async(input_path=audio_uri)
print("output location:", response.output_path)
result = response.get_result(WaiterConfig(max_attempts=240, delay=1))
transcript = json.loads(result) if isinstance(result, (bytes, str)) else result

# --- cell: a new instance type for the endpoint ---
predictor.update_endpoint(initial_instance_count=1, instance_type="ml.m5.xlarge")
described = sess.sagemaker_client.describe_endpoint(EndpointName=endpoint_name)

# --- cell: clean up (the model stays: re-running the notebook reuses it) ---
predictor.delete_endpoint()  # the endpoint and its current config (the one update_endpoint made)
sess.delete_endpoint_config(endpoint_name)  # the config deploy made

print(
    json.dumps(
        {
            "bucket": bucket,
            "role": role,
            "transcript": transcript.get("text") if isinstance(transcript, dict) else str(transcript),
            "output_path": response.output_path,
            "status_after_update": described["EndpointStatus"],
            "config_after_update": described["EndpointConfigName"],
        }
    )
)
