"""A real HTTP server on 127.0.0.1 that speaks the Hugging Face Hub's file-resolve protocol.

What huggingface_hub 0.2x-0.3x expects, checked against its code (``file_download.get_hf_file_metadata``,
``http_get`` and ``utils/_http.py`` ``hf_raise_for_status``):

* ``HEAD /{repo_id}/resolve/{revision}/{filename}`` for an LFS file answers 302 with an absolute
  ``Location`` on the CDN (not followed by HEAD, since it is not relative), ``X-Repo-Commit``,
  ``X-Linked-Etag`` (the quoted sha256 of the content), ``X-Linked-Size`` and the pointer's ``ETag``;
* ``GET`` on the CDN location serves the bytes, ``Range: bytes=N-`` answers 206 with Content-Range;
* errors carry ``X-Error-Code`` (RepoNotFound, EntryNotFound, RevisionNotFound, GatedRepo); a repo
  that does not exist answers 401 + RepoNotFound to anonymous callers, as the real hub does.

``faults`` injects failures per test: ``resolve_status`` / ``cdn_status`` (int), ``drop_after``
(close the connection after N body bytes), ``token`` (required bearer token), ``corrupt`` (flip
bytes but keep the advertised sha256), ``rate`` (bytes per second), ``no_etag``, ``ignore_range``
(answer 200 with the whole file to a range request), ``cdn_host`` (the host name the CDN location
uses, e.g. "localhost" for another host than the resolve URL's 127.0.0.1). Those hold for every
request. ``script(kind, *actions)`` queues one-off behaviours for the next requests of a kind
("resolve" or "cdn"): ("status", code), ("drop", n) (send n body bytes, then cut) or ("hangup",)
(close the connection without an answer); once used up, requests are served normally.
"""
from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")


@dataclass
class HubFile:
    repo_id: str
    filename: str
    path: Path
    sha256: str
    size: int


@dataclass
class RequestLog:
    method: str
    path: str
    headers: dict


@dataclass
class FakeHub:
    root: Path
    files: dict = field(default_factory=dict)
    faults: dict = field(default_factory=dict)
    log: list = field(default_factory=list)
    port: int = 0
    scripts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self.server = _QuietServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, repo_id: str, filename: str, content: bytes | Path) -> HubFile:
        path = content if isinstance(content, Path) else self._store(content)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(8 << 20), b""):
                digest.update(block)
        entry = HubFile(repo_id, filename, path, digest.hexdigest(), path.stat().st_size)
        self.files[(repo_id, filename)] = entry
        return entry

    def _store(self, content: bytes) -> Path:
        path = self.root / hashlib.sha256(content).hexdigest()
        path.write_bytes(content)
        return path

    def reset(self) -> None:
        self.files.clear()
        self.faults.clear()
        self.log.clear()
        self.scripts.clear()

    def script(self, kind: str, *actions: tuple) -> None:
        self.scripts.setdefault(kind, []).extend(actions)

    def next_action(self, kind: str) -> tuple:
        queued = self.scripts.get(kind)
        return queued.pop(0) if queued else ()

    def requests_to(self, kind: str) -> list[RequestLog]:
        return [r for r in self.log if r.path.startswith("/cdn/" if kind == "cdn" else "/") and
                (kind == "cdn" or "/resolve/" in r.path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-transfer is what several tests do on purpose


class _Handler(BaseHTTPRequestHandler):
    server_hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def do_GET(self) -> None:
        self._route(send_body=True)

    def _route(self, send_body: bool) -> None:
        hub = self.server_hub
        hub.log.append(RequestLog(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        if (m := _RESOLVE.match(self.path)) is not None:
            self._resolve(m.group("repo"), m.group("revision"), m.group("file"))
        elif (m := _CDN.match(self.path)) is not None:
            self._cdn(m.group("sha"), send_body)
        else:
            self._error(404, "EntryNotFound")

    def _authorised(self) -> bool:
        token = self.server_hub.faults.get("token")
        return token is None or self.headers.get("Authorization") == f"Bearer {token}"

    def _hang_up(self) -> None:
        self.close_connection = True
        self.connection.shutdown(2)

    def _resolve(self, repo: str, revision: str, filename: str) -> None:
        hub = self.server_hub
        action = hub.next_action("resolve")
        if action[:1] == ("hangup",):
            return self._hang_up()
        if action[:1] == ("status",):
            return self._error(action[1], None)
        if "resolve_status" in hub.faults:
            return self._error(hub.faults["resolve_status"], None)
        if not self._authorised():
            return self._error(401, "GatedRepo" if hub.faults.get("gated") else None)
        if not any(r == repo for r, _ in hub.files):
            return self._error(401, "RepoNotFound")  # the real hub does not reveal which repos exist
        if revision not in ("main", COMMIT):
            return self._error(404, "RevisionNotFound")
        entry = hub.files.get((repo, filename))
        if entry is None:
            return self._error(404, "EntryNotFound")
        self.send_response(302)
        cdn = hub.url.replace("127.0.0.1", hub.faults["cdn_host"]) if "cdn_host" in hub.faults else hub.url
        self.send_header("Location", f"{cdn}/cdn/{entry.sha256}")
        self.send_header("X-Repo-Commit", COMMIT)
        if not hub.faults.get("no_etag"):
            self.send_header("X-Linked-Etag", f'"{entry.sha256}"')
        self.send_header("X-Linked-Size", str(entry.size))
        self.send_header("ETag", '"pointer-etag"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _cdn(self, sha: str, send_body: bool) -> None:
        hub = self.server_hub
        entry = next((f for f in hub.files.values() if f.sha256 == sha), None)
        if entry is None:
            return self._error(404, None)
        action = hub.next_action("cdn") if send_body else ()
        if action[:1] == ("hangup",):
            return self._hang_up()
        if action[:1] == ("status",):
            return self._error(action[1], None)
        if "cdn_status" in hub.faults:
            return self._error(hub.faults["cdn_status"], None)
        start = 0
        if (m := re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))) is not None and \
                not hub.faults.get("ignore_range"):
            start = int(m.group(1))
        if start > entry.size:
            return self._error(416, None)
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{entry.size - 1}/{entry.size}")
        self.send_header("Content-Length", str(entry.size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if send_body:
            self._send_file(entry, start, action[1] if action[:1] == ("drop",) else None)

    def _send_file(self, entry: HubFile, start: int, drop_after: int | None) -> None:
        hub = self.server_hub
        drop_after = hub.faults.get("drop_after") if drop_after is None else drop_after
        rate = hub.faults.get("rate")
        sent = 0
        with entry.path.open("rb") as handle:
            handle.seek(start)
            while block := handle.read(64 * 1024):
                if hub.faults.get("corrupt"):
                    block = bytes(b ^ 0xFF for b in block[:16]) + block[16:]
                if drop_after is not None and sent + len(block) > drop_after:
                    block = block[: max(0, drop_after - sent)]
                    self.wfile.write(block)
                    self.wfile.flush()
                    return self._hang_up()  # cut mid-body, as a dropped connection does
                self.wfile.write(block)
                sent += len(block)
                if rate:
                    time.sleep(len(block) / rate)

    def _error(self, status: int, code: str | None) -> None:
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        body = f'{{"error": "{code or status}"}}'.encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def main() -> None:
    """Serve every catalog repo (tiny LoRAs with the official key names) until interrupted,
    e.g. as HF_ENDPOINT for a real WebUI in the e2e suite: python tests/hub_server.py --port 8765"""
    import argparse
    import sys
    import tempfile

    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
    from helpers import catalog_bytes

    from lib_lcm.rules import catalog

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    hub = FakeHub(Path(tempfile.mkdtemp(prefix="fake-hub-")), port=args.port)
    for entry in catalog.CATALOG:
        hub.add(entry.repo_id, entry.repo_file, catalog_bytes(entry.key))
    print(f"serving {', '.join(e.repo_id for e in catalog.CATALOG)} on {hub.url}", flush=True)
    hub.thread.join()


if __name__ == "__main__":
    main()
