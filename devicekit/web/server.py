"""The local web server for browser runs: the packaged web app, plus an endpoint that receives result files.

Bound to 127.0.0.1 only. Every response carries the cross-origin isolation
headers (COOP ``same-origin``, COEP ``require-corp``, CORP ``same-origin``):
without them Chromium has no ``SharedArrayBuffer`` (no WASM threads) and
``performance.now()`` is coarsened to 0.1 ms.

``POST /devicekit/results/<RUN>/<name>`` writes one result file (the
protocol's frames.csv, device.json, done.json, plus the test's landmarks.json
and frame.rgba) atomically into ``<results_root>/<RUN>/<name>``, only for a run
devicekit opened with ``expect(RUN)``, and only with that run's random token in
the ``X-Devicekit-Token`` header (the page gets it in its URL). Anything else on
the machine that can reach 127.0.0.1 cannot write results (403). The results
folder is never inside the served folder, and a server without a results folder
(``python -m devicekit.web.server APP``) accepts no uploads at all.
"""

from __future__ import annotations

import hmac
import mimetypes
import secrets
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..device.base import RUN_RE
from ..fsutil import atomic_write_bytes

RESULT_NAMES = ("frames.csv", "device.json", "done.json", "landmarks.json", "frame.rgba", "progress.json")
MAX_BODY = 64 * 1024 * 1024
RESULTS_PREFIX = "/devicekit/results/"
TOKEN_HEADER = "X-Devicekit-Token"

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
         ".tflite": "application/octet-stream", ".html": "text/html; charset=utf-8", ".css": "text/css"}


def _handler(root: Path, results_root: Path | None, on_result, tokens: dict[str, str]):
    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {**mimetypes.types_map, **TYPES}

        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def end_headers(self):
            for k, v in ISOLATION_HEADERS.items():
                self.send_header(k, v)
            super().end_headers()

        def log_message(self, fmt, *args):  # quiet: the CLI owns stderr
            return

        def list_directory(self, path):
            self.send_error(HTTPStatus.NOT_FOUND)
            return None

        def do_POST(self):
            path = unquote(urlsplit(self.path).path)
            if not path.startswith(RESULTS_PREFIX):
                return self.send_error(HTTPStatus.NOT_FOUND)
            parts = path[len(RESULTS_PREFIX):].split("/")
            if len(parts) != 2 or not RUN_RE.match(parts[0]) or parts[1] not in RESULT_NAMES:
                return self.send_error(HTTPStatus.BAD_REQUEST, "expected /devicekit/results/<RUN>/<result file>")
            expected = tokens.get(parts[0])
            given = self.headers.get(TOKEN_HEADER, "")
            if results_root is None or expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
                return self.send_error(HTTPStatus.FORBIDDEN, "results are accepted only for an open run, with its token")
            try:
                n = int(self.headers.get("Content-Length", "-1"))
            except ValueError:
                n = -1
            if n < 0 or n > MAX_BODY:
                return self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if n > MAX_BODY else HTTPStatus.LENGTH_REQUIRED)
            body = self.rfile.read(n)
            run_dir = results_root / parts[0]
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(run_dir / parts[1], body)
            if on_result:
                on_result(parts[0], parts[1])
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()

    return Handler


class WebServer:
    """Serves ``root`` on 127.0.0.1:``port`` (0: any free port) in a background thread; a context manager."""

    def __init__(self, root: Path, results_root: Path | None, port: int = 0, on_result=None):
        self.root = Path(root)
        self.results_root = Path(results_root) if results_root is not None else None
        if self.results_root is not None:
            served, res = self.root.resolve(), self.results_root.resolve()
            if res == served or served in res.parents:
                raise ValueError(f"the results folder {res} must not be inside the served folder {served}")
            self.results_root.mkdir(parents=True, exist_ok=True)
        self.tokens: dict[str, str] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.root, self.results_root, on_result, self.tokens))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="devicekit-web", daemon=True)
        self._thread.start()

    def expect(self, run: str) -> str:
        """Open ``run`` for result uploads; returns its random token (the page sends it in X-Devicekit-Token)."""
        if not RUN_RE.match(run):
            raise ValueError(f"bad run id {run!r}")
        self.tokens[run] = secrets.token_urlsafe(24)
        return self.tokens[run]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m devicekit.web.server APP_DIR [--port N]``: serve a packaged web app with COOP/COEP on 127.0.0.1."""
    import argparse
    import time

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("app", type=Path)
    ap.add_argument("--port", type=int, default=8000)
    a = ap.parse_args(argv)
    if not (a.app / "index.html").is_file():
        raise SystemExit(f"{a.app} has no index.html (make one with devicekit package MODEL --platform web)")
    with WebServer(a.app, None, port=a.port) as srv:  # serving only: no run is open, no upload is accepted
        print(f"serving {a.app} at {srv.origin}/index.html (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
