#!/usr/bin/env python3
"""AWS's documented scale-to-zero recipe for an asynchronous endpoint, with plain boto3 against kikitori:
a target-tracking policy on ApproximateBacklogSizePerInstance scales in to zero, and a step scaling policy
triggered by a CloudWatch alarm on HasBacklogWithoutCapacity (put_metric_alarm) scales out from zero.
Only the periods are shorter than the documentation's (a 10-second alarm Period, a 5-second
ScaleInCooldown), so the test takes seconds instead of minutes.

Environment (set by test/compat/cloudwatch.test.ts): KK_URL, KK_NAME, KK_IMAGE, KK_AUDIO, AWS_* credentials.
Prints one JSON line with what it saw; exits non-zero on any mismatch.
"""
import datetime
import json
import os
import time

import boto3
from botocore.exceptions import ClientError

url = os.environ["KK_URL"]
endpoint_name = os.environ["KK_NAME"]
session = boto3.session.Session(region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
s3 = session.client("s3", endpoint_url=url)
sm = session.client("sagemaker", endpoint_url=url)
smr = session.client("sagemaker-runtime", endpoint_url=url)
asg = session.client("application-autoscaling", endpoint_url=url)
cw = session.client("cloudwatch", endpoint_url=url)
report = {"states": [], "counts": []}


def wait(cond, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}: {json.dumps(report, default=str)}")


def instances():
    v = sm.describe_endpoint(EndpointName=endpoint_name)["ProductionVariants"][0]
    n = v["CurrentInstanceCount"]
    if not report["counts"] or report["counts"][-1] != n:
        report["counts"].append(n)
    return n


bucket = f"{endpoint_name}-bucket"
s3.create_bucket(Bucket=bucket)
s3.upload_file(os.environ["KK_AUDIO"], bucket, "input/clip.wav")
sm.create_model(
    ModelName=endpoint_name,
    ExecutionRoleArn="arn:aws:iam::000000000000:role/kikitori-execution-role",
    PrimaryContainer={"Image": os.environ["KK_IMAGE"]},
)
sm.create_endpoint_config(
    EndpointConfigName=endpoint_name,
    ProductionVariants=[
        {"VariantName": "variant1", "ModelName": endpoint_name, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
    ],
    AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{bucket}/output"}},
)
sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=endpoint_name)
sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
instances()

# --- the recipe (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html) ---
resource_id = "endpoint/" + endpoint_name + "/variant/" + "variant1"
asg.register_scalable_target(
    ServiceNamespace="sagemaker",
    ResourceId=resource_id,
    ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    MinCapacity=0,
    MaxCapacity=5,
)
asg.put_scaling_policy(
    PolicyName="Invocations-ScalingPolicy",
    ServiceNamespace="sagemaker",
    ResourceId=resource_id,
    ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    PolicyType="TargetTrackingScaling",
    TargetTrackingScalingPolicyConfiguration={
        "TargetValue": 5.0,
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
            "Statistic": "Average",
        },
        "ScaleInCooldown": 5,
        "ScaleOutCooldown": 300,
    },
)
response = asg.put_scaling_policy(
    PolicyName="HasBacklogWithoutCapacity-ScalingPolicy",
    ServiceNamespace="sagemaker",
    ResourceId=resource_id,
    ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    PolicyType="StepScaling",
    StepScalingPolicyConfiguration={
        "AdjustmentType": "ChangeInCapacity",
        "MetricAggregationType": "Average",
        "Cooldown": 300,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    },
)
step_scaling_policy_arn = response["PolicyARN"]
step_scaling_policy_alarm_name = "HasBacklogWithoutCapacity-Alarm"
cw.put_metric_alarm(
    AlarmName=step_scaling_policy_alarm_name,
    MetricName="HasBacklogWithoutCapacity",
    Namespace="AWS/SageMaker",
    Statistic="Average",
    EvaluationPeriods=2,
    DatapointsToAlarm=2,
    Threshold=1,
    ComparisonOperator="GreaterThanOrEqualToThreshold",
    TreatMissingData="missing",
    Dimensions=[{"Name": "EndpointName", "Value": endpoint_name}],
    Period=10,
    AlarmActions=[step_scaling_policy_arn],
)
# --- end of the recipe ---

policies = asg.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingPolicies"]
step = next(p for p in policies if p["PolicyName"] == "HasBacklogWithoutCapacity-ScalingPolicy")
report["policy_alarms"] = [a["AlarmName"] for a in step["Alarms"]]

# Idle: target tracking scales in to zero.
wait(lambda: instances() == 0, "scale-in to zero")


def alarm_state():
    a = cw.describe_alarms(AlarmNames=[step_scaling_policy_alarm_name])["MetricAlarms"][0]
    if not report["states"] or report["states"][-1] != a["StateValue"]:
        report["states"].append(a["StateValue"])
    return a


# A request at zero instances: the alarm goes to ALARM and its step policy starts one instance.
r = smr.invoke_endpoint_async(EndpointName=endpoint_name, InputLocation=f"s3://{bucket}/input/clip.wav")
output = r["OutputLocation"]
wait(lambda: (alarm_state(), instances())[1] == 1, "scale-out from zero", 120)
alarm_state()
bucket_key = output.replace("s3://", "").split("/", 1)


def has_output():
    try:
        s3.head_object(Bucket=bucket_key[0], Key=bucket_key[1])
        return True
    except ClientError:
        return False


wait(has_output, "the result")
wait(lambda: (alarm_state(), instances())[1] == 0, "scale-in to zero after the work", 120)

activities = asg.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingActivities"]
report["activities"] = [[a["Description"], a["Cause"]] for a in reversed(activities)]

# The metric the alarm watched, read back through CloudWatch.
now = datetime.datetime.now(datetime.timezone.utc)
stats = cw.get_metric_statistics(
    Namespace="AWS/SageMaker",
    MetricName="HasBacklogWithoutCapacity",
    Dimensions=[{"Name": "EndpointName", "Value": endpoint_name}],
    StartTime=now - datetime.timedelta(minutes=10),
    EndTime=now,
    Period=60,
    Statistics=["Maximum", "SampleCount"],
)
report["backlog_without_capacity_max"] = max(d["Maximum"] for d in stats["Datapoints"])
data = cw.get_metric_data(
    MetricDataQueries=[
        {
            "Id": "processed",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": "InvocationsProcessed",
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        }
    ],
    StartTime=now - datetime.timedelta(minutes=10),
    EndTime=now + datetime.timedelta(minutes=1),
)
report["invocations_processed"] = sum(data["MetricDataResults"][0]["Values"])
metrics = cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=[{"Name": "EndpointName", "Value": endpoint_name}])
report["metric_names"] = sorted(m["MetricName"] for m in metrics["Metrics"])

cw.delete_alarms(AlarmNames=[step_scaling_policy_alarm_name])
report["alarms_after_delete"] = len(cw.describe_alarms(AlarmNames=[step_scaling_policy_alarm_name])["MetricAlarms"])
try:
    cw.delete_alarms(AlarmNames=[step_scaling_policy_alarm_name])
    report["delete_missing"] = "no error"
except ClientError as e:
    report["delete_missing"] = e.response["Error"]["Code"]
try:
    cw.put_metric_alarm(
        AlarmName="bad", MetricName="HasBacklogWithoutCapacity", Namespace="AWS/SageMaker", Statistic="Average",
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold", Period=7,
    )
    report["bad_period"] = "no error"
except ClientError as e:
    report["bad_period"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]

sm.delete_endpoint(EndpointName=endpoint_name)
print(json.dumps(report, default=str))
