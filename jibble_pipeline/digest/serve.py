"""Serves the report site (and the digest files) over HTTP until Ctrl-C:
``python -m jibble_pipeline.digest.serve [--host 127.0.0.1] [--port 8080] [--folder DIR]``.

The folder defaults to ``JIBBLE_REPORTS_DIR`` (``$JIBBLE_HOME/reports``). The pages are
static with relative links, so ``python -m http.server -d <folder>`` or opening
``<folder>/index.html`` in a browser works as well.

``add_arguments`` and ``command_serve_reports`` are what a ``serve-reports`` subcommand of
``jibble-pipeline`` needs.
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server of ``folder`` (not started); port 0 picks a free port."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return ThreadingHTTPServer((host, port), handler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--folder",
        type=Path,
        default=None,
        help="default: JIBBLE_REPORTS_DIR or JIBBLE_HOME/reports",
    )


def command_serve_reports(args: argparse.Namespace) -> None:
    from jibble_pipeline.settings.digests import load_digest_settings

    folder: Path = args.folder or load_digest_settings().reports_dir
    if not (folder / "index.html").exists():
        print(
            f"No report site in {folder} yet: materialise client_digests and report_site for a "
            "week (Dagster UI, or the send_weekly_digests job)."
        )
        folder.mkdir(parents=True, exist_ok=True)
    server = make_server(folder, args.host, args.port)
    host, port = str(server.server_address[0]), server.server_address[1]
    print(f"Report site: http://{host}:{port}/  (folder {folder}; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.")
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jibble_pipeline.digest.serve", description="Serve the report site."
    )
    add_arguments(parser)
    command_serve_reports(parser.parse_args(argv))


if __name__ == "__main__":
    main()
