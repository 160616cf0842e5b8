"""Validates SQL API v2 traffic against Snowflake's own OpenAPI spec (sqlapi.yaml).

    check_sqlapi.py SPEC.yaml TRAFFIC.json

TRAFFIC.json: {"requests": [recorded requests], "responses": [{"schema": "ResultSet" |
"QueryStatus" | "QueryFailureStatus", "body": {...}}]}. Requests are matched to the spec's
operations; their bodies, query parameters and required headers are checked. `retry` is
allowed beside the spec's query parameters: Snowflake documents `retry=true` for resubmitted
requests, but the spec file does not list it. Exits non-zero with every violation found.
"""

import json
import re
import sys
import uuid

import yaml
from openapi_schema_validator import OAS30Validator

OPERATIONS = [
    ("POST", re.compile(r"^/api/v2/statements$"), "/api/v2/statements"),
    ("GET", re.compile(r"^/api/v2/statements/[^/]+$"), "/api/v2/statements/{statementHandle}"),
    ("POST", re.compile(r"^/api/v2/statements/[^/]+/cancel$"), "/api/v2/statements/{statementHandle}/cancel"),
]
EXTRA_QUERY = {"retry"}


def validator(spec, schema):
    document = {"components": spec["components"], **schema}
    return OAS30Validator(document, format_checker=OAS30Validator.FORMAT_CHECKER)


def resolve(spec, item):
    if "$ref" in item:
        name = item["$ref"].rsplit("/", 1)[-1]
        return spec["components"]["parameters"][name]
    return item


def check_request(spec, request, problems):
    match = next(((m, tmpl) for m, pattern, tmpl in OPERATIONS
                  if m == request["method"] and pattern.match(request["path"])), None)
    if match is None:
        problems.append(f"{request['method']} {request['path']}: not an operation of the spec")
        return
    method, template = match
    path_item = spec["paths"][template]
    operation = path_item[method.lower()]
    parameters = [resolve(spec, p) for p in path_item.get("parameters", []) + operation.get("parameters", [])]
    known = {p["name"]: p for p in parameters if p["in"] == "query"}
    for name, value in request["query"].items():
        if name in EXTRA_QUERY:
            continue
        if name not in known:
            problems.append(f"{template}: query parameter {name!r} is not in the spec")
            continue
        schema = known[name]["schema"]
        if schema.get("format") == "uuid":
            try:
                uuid.UUID(value)
            except ValueError:
                problems.append(f"{template}: {name}={value!r} is not a UUID")
        if schema.get("type") == "integer" and not value.isdigit():
            problems.append(f"{template}: {name}={value!r} is not an integer")
    for p in parameters:
        if p["in"] == "header" and p.get("required") and p["name"].lower() not in request["headers"]:
            problems.append(f"{template}: required header {p['name']} missing")
        if p["in"] == "path" and p["schema"].get("format") == "uuid":
            handle = request["path"].split("/")[4]
            try:
                uuid.UUID(handle)
            except ValueError:
                problems.append(f"{template}: statement handle {handle!r} is not a UUID")
    body_spec = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body_spec and request["body"]:
        errors = validator(spec, body_spec["schema"]).iter_errors(json.loads(request["body"]))
        problems.extend(f"{template} body {e.json_path}: {e.message}" for e in errors)


def main():
    with open(sys.argv[1]) as f:
        spec = yaml.safe_load(f)
    with open(sys.argv[2]) as f:
        traffic = json.load(f)
    problems = []
    for request in traffic.get("requests", []):
        check_request(spec, request, problems)
    for response in traffic.get("responses", []):
        schema = {"$ref": f"#/components/schemas/{response['schema']}"}
        errors = validator(spec, schema).iter_errors(response["body"])
        problems.extend(f"{response['schema']} {e.json_path}: {e.message}" for e in errors)
    if problems:
        sys.exit("\n".join(problems))
    print(f"{len(traffic.get('requests', []))} requests, {len(traffic.get('responses', []))} responses valid")


if __name__ == "__main__":
    main()
