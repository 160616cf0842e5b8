"""Creates the buckets and queues the sample events name on an S3/SQS endpoint (moto_server,
LocalStack, MinIO + ElasticMQ...) and uploads tests/data/sales.csv under the sample keys, so
`cargo lambda invoke --data-file events/csv-to-parquet/...` converts for real.

    .venv/bin/python tests/python/seed_local_aws.py http://127.0.0.1:5000
"""

import os
import sys

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BRONZE = "snowcast-bronze-123456789012-us-east-1"
SILVER = "snowcast-silver-123456789012-us-east-1"
KEYS = ["acme/sales/2026/11/sales.csv", "acme/sales/2026/Ventes été (Q3).csv"]


def main() -> None:
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    for bucket in (BRONZE, SILVER):
        s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName="snowcast-load")["QueueUrl"]
    with open(os.path.join(ROOT, "tests", "data", "sales.csv"), "rb") as f:
        body = f.read()
    for key in KEYS:
        s3.put_object(Bucket=BRONZE, Key=key, Body=body)
    print(f"export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
          f"AWS_REGION=us-east-1")
    print(f"export SNOWCAST_SILVER_BUCKET={SILVER} SNOWCAST_LOAD_QUEUE_URL={queue_url}")


if __name__ == "__main__":
    main()
