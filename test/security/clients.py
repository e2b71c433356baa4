"""Real Python clients against a kikitori in keys mode: the OpenAI SDK with a bearer key, boto3 with SigV4.

Usage: clients.py URL API_KEY ACCESS_KEY_ID SECRET AUDIO. Prints one JSON object with what each client saw.
"""
import json
import sys
import time

import boto3
import openai
from botocore.exceptions import ClientError

url, key, akid, secret, audio = sys.argv[1:6]
out = {}

client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
with open(audio, "rb") as f:
    out["openai_text"] = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="text")
try:
    with open(audio, "rb") as f:
        openai.OpenAI(base_url=f"{url}/v1", api_key="kk_000000000000_" + "x" * 43, max_retries=0).audio.transcriptions.create(
            file=f, model="whisper-1"
        )
except openai.AuthenticationError as e:
    out["openai_wrong_key"] = [e.status_code, e.code]

kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=akid, aws_secret_access_key=secret)
s3, sm, smr, sts = (boto3.client(n, **kw) for n in ("s3", "sagemaker", "sagemaker-runtime", "sts"))
out["caller"] = sts.get_caller_identity()["UserId"]
s3.upload_file(audio, "kikitori", "boto3/jfk.wav")
r = smr.invoke_endpoint_async(EndpointName="whisper", InputLocation="s3://kikitori/boto3/jfk.wav", ContentType="audio/wav")
bucket, _, okey = r["OutputLocation"][len("s3://"):].partition("/")
for _ in range(600):
    try:
        out["boto3_text"] = s3.get_object(Bucket=bucket, Key=okey)["Body"].read().decode()
        break
    except ClientError:
        time.sleep(0.5)
out["endpoints"] = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
bad = boto3.client("sagemaker", **{**kw, "aws_secret_access_key": "wrong"})
try:
    bad.list_models()
except ClientError as e:
    out["boto3_wrong_secret"] = [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]]
print(json.dumps(out))
