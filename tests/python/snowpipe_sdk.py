"""The official snowflake-ingest SDK, driven by the tests on the same inputs as snowcast.

    snowpipe_sdk.py keys DIR                 writes key.pem, key-encrypted.pem (passphrase
                                             "s3cret") and public.pem into DIR
    snowpipe_sdk.py ingest ARGS.json         runs SimpleIngestManager.ingest_files against
                                             ARGS' base URL; prints the SDK's token claims
    snowpipe_sdk.py history ARGS.json        runs SimpleIngestManager.get_history_range with
                                             ARGS' start and end
    snowpipe_sdk.py verify PUBLIC.pem TOKEN  verifies an RS256 token, prints its claims
"""

import json
import sys
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from snowflake.ingest import SimpleIngestManager, StagedFile


def keys(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"s3cret"))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    for name, data in (("key.pem", plain), ("key-encrypted.pem", encrypted), ("public.pem", public)):
        with open(f"{directory}/{name}", "wb") as f:
            f.write(data)


def manager_for(args):
    base = urlsplit(args["base_url"])
    return SimpleIngestManager(account=args["account"], host=base.hostname, user=args["user"],
                               pipe=args["pipe"], private_key=args["private_key"],
                               scheme=base.scheme, port=base.port)


def ingest(args_path):
    with open(args_path) as f:
        args = json.load(f)
    manager = manager_for(args)
    files = [StagedFile(f["path"], f["size"]) for f in args["files"]]
    response = manager.ingest_files(files)
    token = manager.sec_manager.get_token()
    print(json.dumps({"response": response,
                      "claims": jwt.decode(token, options={"verify_signature": False})}))


def history(args_path):
    with open(args_path) as f:
        args = json.load(f)
    print(json.dumps(manager_for(args).get_history_range(args["start"], args["end"])))


def verify(public_path, token):
    with open(public_path) as f:
        public = f.read()
    claims = jwt.decode(token, public, algorithms=["RS256"], options={"verify_aud": False})
    print(json.dumps(claims))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "keys":
        keys(sys.argv[2])
    elif command == "ingest":
        ingest(sys.argv[2])
    elif command == "history":
        history(sys.argv[2])
    elif command == "verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {command}")
