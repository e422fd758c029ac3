"""faaslab's logs in the application's own logging.

    python examples/logging_into_app.py

faaslab logs through the standard ``logging`` module, to loggers named
after its modules under ``faaslab`` (``faaslab._deployment._actor``, ...).
An application routes and filters them as any library's: here its own
format on stderr, faaslab's events at INFO, its sampler's at WARNING only.
Each record's message is ``event key=value ...``; the event's fields are in
``record.faaslab_event`` (a dict) for structured handlers. The alternative,
``faaslab.enable_logging("json")``, shows them as the CLI renders them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio

import faaslab

HERE = Path(__file__).resolve().parent


class KeepsEvents(logging.Handler):
    """A structured handler: collects the event names faaslab logged."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "faaslab_event", None)
        if event is not None:
            self.events.append(event["event"])


async def main() -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="app %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("faaslab").setLevel(logging.INFO)
    logging.getLogger("faaslab._sampling").setLevel(logging.WARNING)
    kept = KeepsEvents()
    logging.getLogger("faaslab").addHandler(kept)

    spec = faaslab.DeploymentSpec(
        functions=[faaslab.FunctionSpec(name="echo", code=str(HERE / "functions/echo"))],
        storage=faaslab.StorageSpec(kind="none"),
    )
    async with faaslab.open_deployment(spec) as dep:
        await dep.invoke("echo", {"hello": "logs"})
    print(f"faaslab events seen by the application: {sorted(set(kept.events))}")


if __name__ == "__main__":
    anyio.run(main)
