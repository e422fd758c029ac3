"""The supervisor process's entry point: ``python -m faaslab._control``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import anyio
import msgspec

from .._errors import StateError
from .._logging import configure_logging
from .._spec import DeploymentSpec
from ._protocol import ReadyMessage, encode
from ._server import supervise


def main(argv: list[str] | None = None) -> int:
    """The supervisor process's entry point."""
    parser = argparse.ArgumentParser(prog="python -m faaslab._control")
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--ready-fd", required=True, type=int)
    args = parser.parse_args(argv)
    configure_logging("json", debug=False)
    ready = os.fdopen(args.ready_fd, "wb")

    def report(message: ReadyMessage) -> None:
        if not ready.closed:
            ready.write(encode(message) + b"\n")
            ready.close()

    try:
        spec = msgspec.json.decode(args.spec.read_bytes(), type=DeploymentSpec)
    except (OSError, msgspec.DecodeError) as exc:
        report(ReadyMessage(ok=False, error=f"cannot read the spec: {exc}", exit_code=2))
        return 2
    try:
        return anyio.run(supervise, spec, args.state, args.log, report)
    except StateError as exc:
        report(ReadyMessage(ok=False, error=str(exc), exit_code=exc.exit_code))
        return exc.exit_code
    finally:
        report(ReadyMessage(ok=False, error="the supervisor ended unexpectedly (see its log)"))


if __name__ == "__main__":
    raise SystemExit(main())
