"""A file server on 127.0.0.1 for the download tests: it honours Range requests (as real servers
do) and can be told to misbehave for a given file: cut a transfer short, fail with an HTTP status
(e.g. 503), or ignore Range and send the whole file, for its next requests or for all of them
(``broken``), or hold its requests until released. It counts the requests it serves at once."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Served:
    url: str
    faults: dict[str, list[str]] = field(default_factory=dict)  # file name -> faults for its next requests
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (file name, Range header)
    broken: dict[str, str] = field(default_factory=dict)  # file name -> fault for every request
    hold: set[str] = field(default_factory=set)  # file names whose requests wait for ``released``
    released: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.requests if n == name)


def _handler(root: Path, served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

        def do_GET(self) -> None:
            with served.lock:
                served.in_flight += 1
                served.max_in_flight = max(served.max_in_flight, served.in_flight)
            try:
                self._get()
            finally:
                with served.lock:
                    served.in_flight -= 1

        def _get(self) -> None:
            name = self.path.lstrip("/")
            byte_range = self.headers.get("Range")
            served.requests.append((name, byte_range))
            fault = served.faults.get(name, []).pop(0) if served.faults.get(name) else served.broken.get(name)
            if name in served.hold:
                served.released.wait(60)
            path = root / name
            if not path.is_file():
                self.send_error(404)
                return
            if fault and fault.isdigit():
                self.send_error(int(fault))
                return
            data = path.read_bytes()
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", byte_range or "")
            if match and fault != "ignore-range":
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # "truncate": announce the whole body, send half of it, then drop the connection;
            # "cut": the same, but never past the file's middle, whatever the Range
            if fault == "truncate":
                body = body[: len(body) // 2]
            elif fault == "cut":
                body = body[: max(0, len(data) // 2 - start)]
            self.wfile.write(body)
            if fault in ("truncate", "cut"):
                self.close_connection = True

    return Handler


@contextlib.contextmanager
def serve(root: Path) -> Iterator[Served]:
    """Serve the files of ``root`` at http://127.0.0.1:<port>/<name>."""
    served = Served("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Path(root), served))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
