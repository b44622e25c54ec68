"""Library use — ``import restock`` without the CLI's ``configure()`` — redacts secrets too.

structlog's own defaults print every field as it is and render exceptions with the locals of each
frame, where a resolved token may well sit. Each case runs in a fresh interpreter, as a script
using the library would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SECRET = "libsecret-5d2c81ab77"


def _script_output(body: str) -> str:
    code = textwrap.dedent("""
        from restock.config import resolve_secret
        from restock.log import get_logger
        token = resolve_secret("${SEC_LIB_TOKEN}").get_secret_value()
        log = get_logger("script")
    """) + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "SEC_LIB_TOKEN": SECRET}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_an_event_field_holding_a_secret_is_redacted():
    output = _script_output('log.info("calling", url=f"https://erp/?key={token}")')
    assert "calling" in output and "[REDACTED]" in output
    assert SECRET not in output


def test_a_logged_traceback_never_shows_a_secret_held_in_a_frame():
    output = _script_output("""
        def send(bearer):
            raise RuntimeError("refused")
        try:
            send(f"Bearer {token}")
        except RuntimeError:
            log.exception("send.failed")
    """)
    assert "send.failed" in output and "RuntimeError: refused" in output
    assert SECRET not in output


def test_a_configured_process_keeps_its_own_setup():
    output = _script_output("""
        import json, sys
        from restock.log import configure
        configure(json=True)
        log.info("configured", token=token)
    """)
    event = next(json.loads(line) for line in output.splitlines() if line.startswith("{"))
    assert event["event"] == "configured" and event["token"] == "[REDACTED]"
