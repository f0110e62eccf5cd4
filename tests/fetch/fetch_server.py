"""A local HTTP server on 127.0.0.1 serving synthetic files, for the fetch tests (never the internet).

It answers `Range: bytes=N-` with 206, can cut the first response to a path half-way (a dropped connection), can
ignore Range requests, and records every request. It runs in a daemon thread with a socket timeout and is shut
down when the test ends.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from leut.fetch.manifest import Dataset, RemoteFile


class _Handler(BaseHTTPRequestHandler):
  timeout = 5  # a stuck client cannot hold the server

  def log_message(self, *args):  # quiet
    pass

  def do_GET(self):
    srv = self.server
    path = self.path.lstrip("/")
    srv.requests.append((path, self.headers.get("Range")))
    body = srv.files.get(path)
    if body is None:
      self.send_error(404, "not found")
      return
    start = 0
    rng = self.headers.get("Range")
    if rng and not srv.ignore_range:
      start = int(rng.split("=")[1].split("-")[0])
      self.send_response(206)
      self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
    else:
      self.send_response(200)
    rest = body[start:]
    self.send_header("Content-Length", str(len(rest)))
    self.end_headers()
    if path in srv.drop_first and path not in srv.dropped:
      srv.dropped.add(path)
      self.wfile.write(rest[: len(rest) // 2])
      self.wfile.flush()
      self.close_connection = True
      return
    self.wfile.write(rest)


def serve():
  """A started server (call ``stop``): files, requests, drop_first, dropped, ignore_range, url."""
  srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  srv.files, srv.requests, srv.drop_first, srv.dropped, srv.ignore_range = {}, [], set(), set(), False
  srv.daemon_threads = True
  srv.thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
  srv.thread.start()
  srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
  return srv


def stop(srv) -> None:
  srv.shutdown()
  srv.server_close()
  srv.thread.join(timeout=5)


def synthetic_dataset(name: str, files: dict[str, bytes], *, checksum: bool = True) -> Dataset:
  """A manifest entry for synthetic files, with their true sizes and SHA-1s (URLs unused: tests pass --base-url)."""
  entries = tuple(
    RemoteFile(
      path,
      f"https://example.invalid/{path}",
      len(data),
      f"sha1:{hashlib.sha1(data).hexdigest()}" if checksum else None,
      "test",
    )
    for path, data in files.items()
  )
  return Dataset(name, "synthetic test data", entries, "--config.data.brain_dir={dest}")
