"""The emulator's floor for case (a): the aws CLI script's calls (13 mutating, 2 reads), made
from one warm Python process (boto3, as the CLI is botocore), so that only the emulator's own
time per request is left. Clients are made and each answers one read before the clock starts.

Reads its inputs as JSON in its one argument; prints {"ms": ..., "total": N, "mutating": M} on stdout.
"""
import json
import os
import sys
import time

import boto3

inp = json.loads(sys.argv[1])
app, region, endpoint = inp["app"], inp["region"], inp["endpoint"]
account = "123456789012"
session = boto3.session.Session(region_name=region)
iam, s3, ec2, ecs = (
    session.client(name, endpoint_url=endpoint) for name in ("iam", "s3", "ec2", "ecs")
)
# Warm: connections open, models loaded, moto's first EC2 answer (slow) out of the way.
iam.list_roles(MaxItems=1)
s3.list_buckets()
ec2.describe_vpcs()
ecs.list_clusters()

total = mutating = 0


def call(fn, write=True, **kw):
    global total, mutating
    total += 1
    mutating += 1 if write else 0
    return fn(**kw)


trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
policy = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{app}/config/*"},
    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{app}",
     "Condition": {"StringLike": {"s3:prefix": ["config/*"]}}}]})
config_dir = os.path.join(inp["examples"], "config")
files = sorted(f for f in os.listdir(config_dir) if os.path.isfile(os.path.join(config_dir, f)))
bodies = {f: open(os.path.join(config_dir, f), "rb").read() for f in files}
task_role, exec_role = f"{app}-task", f"{app}-execution"
text = open(os.path.join(inp["examples"], "taskdef.json")).read()
for k, v in {
    '"family": "ecskit-demo"': f'"family": "{app}"',
    "${ECSKIT_TASK_ROLE_ARN}": f"arn:aws:iam::{account}:role/{task_role}",
    "${ECSKIT_EXECUTION_ROLE_ARN}": f"arn:aws:iam::{account}:role/{exec_role}",
    "${ECSKIT_IMAGE_URI}": inp["image_uri"],
    "${ECSKIT_CONFIG_URI}": f"s3://{app}/config/",
}.items():
    text = text.replace(k, v)
taskdef = json.loads(text)

start = time.perf_counter()
for role in (task_role, exec_role):
    call(iam.create_role, RoleName=role, AssumeRolePolicyDocument=trust,
         Tags=[{"Key": "managed-by", "Value": "ecskit"}])
call(iam.put_role_policy, RoleName=task_role, PolicyName="s3-config", PolicyDocument=policy)
call(iam.attach_role_policy, RoleName=exec_role,
     PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
call(s3.create_bucket, Bucket=app, CreateBucketConfiguration={"LocationConstraint": region})
call(s3.put_public_access_block, Bucket=app, PublicAccessBlockConfiguration={
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True})
call(s3.put_bucket_encryption, Bucket=app, ServerSideEncryptionConfiguration={
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
call(s3.put_bucket_tagging, Bucket=app,
     Tagging={"TagSet": [{"Key": "managed-by", "Value": "ecskit"}]})
for name, body in bodies.items():
    call(s3.put_object, Bucket=app, Key=f"config/{name}", Body=body, ServerSideEncryption="AES256")
subnets = call(ec2.describe_subnets, write=False,
               Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
groups = call(ec2.describe_security_groups, write=False,
              Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
call(ecs.create_cluster, clusterName=app, capacityProviders=["FARGATE", "FARGATE_SPOT"],
     tags=[{"key": "managed-by", "value": "ecskit"}])
td = call(ecs.register_task_definition, **taskdef)["taskDefinition"]["taskDefinitionArn"]
call(ecs.create_service, cluster=app, serviceName=app, taskDefinition=td, desiredCount=1,
     launchType="FARGATE",
     networkConfiguration={"awsvpcConfiguration": {
         "subnets": [s["SubnetId"] for s in subnets],
         "securityGroups": [groups[0]["GroupId"]], "assignPublicIp": "DISABLED"}},
     deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
ms = (time.perf_counter() - start) * 1000.0
print(json.dumps({"ms": ms, "total": total, "mutating": mutating}))
