"""No secret string in any log line, summary or database row, after real runs that used them.

``restock run`` runs in a subprocess at DEBUG level over a generated warehouse, with a webhook
order sink (bearer token from the environment), a webhook summary sink (token from a file) that
answers with an error echoing the Authorization header it got, a Slack sink whose URL is itself
a secret, and a files summary sink. Then everything restock wrote is scanned: its whole output,
the summary files (JSON and Markdown), the outbox and every row of every table of the state store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from restock.demo import generate
from tests.support.dates import PINNED_END
from tests.support.loopback import serve_asgi

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ORDER_TOKEN = "ord-tok-9b1e77c04a2d5f31"
SUMMARY_TOKEN = "sum-tok-2c8d40e95b7a1f66"
SLACK_PATH = "/services/T0SECRET9/B0SECRET7/s3cr3tSlackPathX41"


class Downstream:
    """Accepts orders (and remembers the Authorization it saw); a summary webhook that refuses
    with a body echoing the token, as a careless server might; a Slack-compatible endpoint."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        self.slack_posts = 0

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/orders", self._order, methods=["POST"]),
            Route("/orders/{key}", self._lookup, methods=["GET"]),
            Route("/summaries", self._summary, methods=["POST"]),
            Route(SLACK_PATH, self._slack, methods=["POST"])])

    async def _order(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("authorization", ""))
        return JSONResponse({"id": f"ERP-{len(self.authorizations)}"}, status_code=201)

    async def _lookup(self, request: Request) -> Response:
        return JSONResponse({"detail": "not found"}, status_code=404)

    async def _summary(self, request: Request) -> Response:
        echoed = request.headers.get("authorization", "")
        return Response(f"invalid request from client with {echoed}", status_code=422)

    async def _slack(self, request: Request) -> Response:
        self.slack_posts += 1
        return Response("ok")


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")
    generate(folder / "warehouse", seed=5, skus=12, end=PINNED_END)
    (folder / "secrets").mkdir()
    (folder / "secrets" / "summary_token").write_text(SUMMARY_TOKEN + "\n")
    downstream = Downstream()
    with serve_asgi(downstream.app()) as url:
        config = folder / "config"
        (config / "orgs").mkdir(parents=True)
        org = config / "orgs" / "sec.yaml"
        org.write_text(f"""org: sec
mode: auto
source: {{connector: files, path: ../../warehouse, as_of: history_end}}
order_sink:
  connector: webhook
  url: {url}/orders
  lookup_url: {url}/orders/{{key}}
  token: ${{SEC_ORDER_TOKEN}}
summary_sinks:
  - {{connector: files, path: ../../summaries}}
  - connector: webhook
    url: {url}/summaries
    token: file:../../secrets/summary_token
    retries: {{attempts: 1}}
  - {{connector: slack, url: "${{SEC_SLACK_URL}}"}}
forecast: {{statsmodels_seconds: 0, history_days: 90}}
guard: {{max_multiple_of_usual: 1000, min_forecast_confidence: 0}}
""")
        org.chmod(0o640)
        env = {**os.environ, "SEC_ORDER_TOKEN": ORDER_TOKEN, "SEC_SLACK_URL": url + SLACK_PATH,
               "RESTOCK_STATE_URL": f"sqlite:///{folder / 'state.db'}",
               "RESTOCK_LOG_LEVEL": "DEBUG", "PYTHONPATH": str(ROOT)}
        outputs = [_run(config, env, "run", "--org", "sec", "--json") for _ in range(2)]
        outputs.append(_run(config, env, "orders", "--org", "sec"))
    return folder, downstream, "\n".join(outputs)


def _run(config: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "restock.cli", *args, "--config", str(config)],
                          env=env, capture_output=True, text=True, timeout=180)
    return done.stdout + done.stderr


def _secrets() -> list[str]:
    return [ORDER_TOKEN, SUMMARY_TOKEN, SLACK_PATH]


def test_the_secrets_were_really_used(ran):
    _, downstream, _ = ran
    assert f"Bearer {ORDER_TOKEN}" in downstream.authorizations
    assert downstream.slack_posts >= 1


def test_no_secret_in_any_log_line_or_command_output(ran):
    _, _, output = ran
    assert "run.finished" in output and "http" in output.lower()   # DEBUG logs were written
    for line in output.splitlines():
        for secret in _secrets():
            assert secret not in line, line


def test_no_secret_in_any_summary_or_outbox_file(ran):
    folder, _, _ = ran
    files = [p for p in (folder / "summaries").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".json", ".md"}
    for path in files:
        text = path.read_text(errors="replace")
        for secret in _secrets():
            assert secret not in text, path


def test_no_secret_in_any_database_row(ran):
    folder, _, _ = ran
    engine = sa.create_engine(f"sqlite:///{folder / 'state.db'}")
    tables = sa.inspect(engine).get_table_names()
    assert {"ledger_orders", "ledger_events"} <= set(tables), tables
    rows = 0
    with engine.connect() as conn:
        for table in tables:
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                rows += 1
                text = " ".join(str(value) for value in row)
                for secret in _secrets():
                    assert secret not in text, (table, text[:200])
    engine.dispose()
    assert rows > 10


def test_the_refusing_summary_sink_is_reported_without_its_echo(ran):
    folder, _, output = ran
    assert "summaries" in output and "422" in output
    assert "[REDACTED]" in output
