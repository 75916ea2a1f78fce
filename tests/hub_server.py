"""A loopback HTTP server that serves weights files in their sources' exact layouts, for tests (no internet):
- Hugging Face hub: `/{repo_id}/resolve/{revision}/{filename}`, answering HEAD and GET with the headers
  huggingface_hub reads (X-Repo-Commit, X-Linked-Etag / ETag = the file's sha256 as for Git-LFS files,
  Content-Length);
- plain URLs under a mirror base: `/{host}/{path}` (vitkit's VITKIT_WEIGHTS_MIRROR layout).
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class WeightsServer:
    def __init__(self):
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (body, sha256 announced in the ETag)
        self.requests: list[tuple[str, str]] = []
        files, requests = self.files, self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bool):
                path = urlsplit(self.path).path
                requests.append((self.command, path))
                if path not in files:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, etag = files[path]
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self):  # http.server dispatches on the method name
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add_hub(self, repo: str, filename: str, data: bytes, etag: str | None = None) -> None:
        """A hub file; `etag` defaults to the sha256 of `data` (pass another to serve a corrupt copy)."""
        self.files[f"/{repo}/resolve/main/{filename}"] = (data, etag or hashlib.sha256(data).hexdigest())

    def add_url(self, url: str, data: bytes) -> None:
        parts = urlsplit(url)
        self.files[f"/{parts.netloc}{parts.path}"] = (data, hashlib.sha256(data).hexdigest())

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
