"""faaslab's logging as a library: nothing on stdout, warnings on stderr, opt-in rendering.

Each case runs in a fresh interpreter, as an application importing faaslab
would: structlog unconfigured, logging unconfigured.
"""

from __future__ import annotations

import json
import subprocess
import sys

EMIT = """
import faaslab, structlog
log = structlog.get_logger("faaslab._deployment._actor").bind(deployment="d1")
log.debug("debug.event", n=0)
log.info("instance.ready", instance="fn-0")
log.warning("sampler.lagging", late=3)
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def test_unconfigured_nothing_on_stdout_and_warnings_on_stderr() -> None:
    done = run(EMIT)
    assert done.stdout == ""
    # The stdlib's last resort: WARNING and above, the message as faaslab words it.
    assert done.stderr == "sampler.lagging deployment=d1 late=3\n"


def test_the_applications_logging_gets_named_loggers_and_the_event_dict() -> None:
    done = run(
        "import logging\n"
        "class Keep(logging.Handler):\n"
        "    def emit(self, record):\n"
        "        print(record.name, record.levelname, record.getMessage(),\n"
        "              sorted(record.faaslab_event.items()))\n"
        "logging.getLogger().addHandler(Keep())\n"
        "logging.getLogger('faaslab').setLevel(logging.INFO)\n" + EMIT
    )
    lines = done.stdout.splitlines()
    assert lines == [
        "faaslab._deployment._actor INFO instance.ready deployment=d1 instance=fn-0 "
        "[('deployment', 'd1'), ('event', 'instance.ready'), ('instance', 'fn-0'), "
        "('level', 'info')]",
        "faaslab._deployment._actor WARNING sampler.lagging deployment=d1 late=3 "
        "[('deployment', 'd1'), ('event', 'sampler.lagging'), ('late', 3), ('level', 'warning')]",
    ]


def test_enable_logging_renders_json_on_stderr_as_the_cli_does() -> None:
    done = run('import faaslab\nfaaslab.enable_logging("json")\n' + EMIT)
    assert done.stdout == ""
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [e["event"] for e in events] == ["instance.ready", "sampler.lagging"]
    assert events[0]["deployment"] == "d1"
    assert events[0]["level"] == "info"
    assert events[0]["timestamp"].endswith("Z")


def test_an_application_that_configured_structlog_keeps_its_configuration() -> None:
    done = run(
        "import structlog\n"
        "structlog.configure(processors=[structlog.processors.KeyValueRenderer()])\n" + EMIT
    )
    # Its configuration (printing, here to stdout) applies to faaslab's events too.
    assert "event='instance.ready'" in done.stdout
