#!/usr/bin/env python3
"""SNS through plain boto3 pointed at kikitori: one step per call, driven by test/notify/sns-boto3.test.ts.

  sns_boto3.py subscribe <receiver-url>     create a topic, subscribe the receiver; prints {"TopicArn", "SubscriptionArn"}
  sns_boto3.py confirm <topic-arn> <token>  ConfirmSubscription, list, Publish; prints what it saw
  sns_boto3.py unsubscribe <sub-arn>        Unsubscribe; prints the remaining subscriptions
"""
import json
import os
import sys

import boto3

sns = boto3.client("sns", endpoint_url=os.environ["KK_URL"], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
step = sys.argv[1]
if step == "subscribe":
    arn = sns.create_topic(Name="boto3-topic")["TopicArn"]
    sub = sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=sys.argv[2])
    print(json.dumps({"TopicArn": arn, "SubscriptionArn": sub["SubscriptionArn"]}))
elif step == "confirm":
    arn, token = sys.argv[2], sys.argv[3]
    confirmed = sns.confirm_subscription(TopicArn=arn, Token=token)["SubscriptionArn"]
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    msg = sns.publish(TopicArn=arn, Subject="hello", Message=json.dumps({"from": "boto3"}))["MessageId"]
    print(json.dumps({"SubscriptionArn": confirmed, "Subscriptions": subs, "Topics": topics, "MessageId": msg}))
elif step == "unsubscribe":
    sns.unsubscribe(SubscriptionArn=sys.argv[2])
    print(json.dumps({"Subscriptions": sns.list_subscriptions()["Subscriptions"]}))
