"""Runs moto's AWS emulator on 127.0.0.1 for the duration of a test process.

Prints the endpoint URL on stdout once the server answers, then serves until stdin closes:
the test process holds the pipe, so the server goes away with it, however it ends.
"""

import logging
import socket
import sys
import urllib.request

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    # One line per request drowns the test output; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(f"{url}/moto-api/", timeout=10).read()
    print(url, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
