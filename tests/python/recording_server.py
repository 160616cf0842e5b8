"""A recording HTTP server on 127.0.0.1 standing in for Snowflake in tests.

Every request is recorded (method, path, query, headers, body). Answers come from a script
the test posts to /_script: a list of {"status", "body", "match"?}, each used once, the first
whose "match" (if any) is a substring of the request's path and query, or of its body
(statements sent at once are told apart by their text); then a default
Snowpipe success. GET /_requests returns and clears the record. Prints its URL, serves until
stdin closes (the test process holds the pipe).
"""

import json
import threading
from urllib.parse import parse_qs, urlsplit

from stand_in import JsonHandler, serve

lock = threading.Lock()
recorded = []
script = []


class Handler(JsonHandler):
    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        url = urlsplit(self.path)
        if url.path == "/_script":
            with lock:
                script.extend(json.loads(body))
            return self.reply(200, {"ok": True})
        if url.path == "/_requests":
            with lock:
                out = list(recorded)
                recorded.clear()
            return self.reply(200, out)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with lock:
            recorded.append({
                "method": self.command,
                "path": url.path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            })
            target = self.path
            index = next((i for i, a in enumerate(script)
                          if a.get("match", "") in target or a.get("match", "") in body), None)
            answer = script.pop(index) if index is not None else None
        if answer is None:
            answer = {"status": 200, "body": {"requestId": query.get("requestId"), "responseCode": "SUCCESS"}}
        self.reply(answer["status"], answer["body"])

    do_GET = do_POST = handle_any


def main():
    serve(Handler)


if __name__ == "__main__":
    main()
