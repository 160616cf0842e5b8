"""boto3 against the local stack's S3 endpoint (access key and secret `snowcast`), as a
user's script would use it.

    local_s3.py ENDPOINT put BUCKET KEY FILE     upload (multipart above 8 MB, as boto3 does)
    local_s3.py ENDPOINT list BUCKET [PREFIX]    print the keys as a JSON list
    local_s3.py ENDPOINT get BUCKET KEY          print the object
    local_s3.py ENDPOINT try-put BUCKET KEY FILE put_object; print "ok" or the error code
    local_s3.py ENDPOINT etag BUCKET KEY         print the object's ETag
    local_s3.py ENDPOINT get-if-match BUCKET KEY ETAG   print "ok" or the error code
"""

import json
import sys

import boto3
from botocore.exceptions import ClientError


def main() -> None:
    endpoint, command, bucket, *rest = sys.argv[1:]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="snowcast", aws_secret_access_key="snowcast")
    if command == "put":
        key, path = rest
        s3.upload_file(path, bucket, key)
    elif command == "list":
        prefix = rest[0] if rest else ""
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for o in page.get("Contents", [])]
        print(json.dumps(sorted(keys)))
    elif command == "get":
        sys.stdout.write(s3.get_object(Bucket=bucket, Key=rest[0])["Body"].read().decode())
    elif command == "try-put":
        key, path = rest
        with open(path, "rb") as f:
            print(attempt(lambda: s3.put_object(Bucket=bucket, Key=key, Body=f.read())))
    elif command == "etag":
        print(s3.head_object(Bucket=bucket, Key=rest[0])["ETag"])
    elif command == "get-if-match":
        key, etag = rest
        print(attempt(lambda: s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read()))
    else:
        sys.exit(f"unknown command {command}")


def attempt(call) -> str:
    try:
        call()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]


if __name__ == "__main__":
    main()
