"""Slack-compatible and email summary sinks against real servers on loopback."""

from __future__ import annotations

import json
import ssl

import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from restock.connectors import ConnectorContext
from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock_connectors.email import EmailSummarySink
from restock_connectors.slack import SlackSummarySink
from tests.support.loopback import serve_asgi
from tests.support.samples import run_summary
from tests.support.smtp import serve_smtp

HOOK_PATH = "/services/T0001/B0002/hookSecret1234567"
SMTP_PASSWORD = "smtp-pass-9f8e7d"


@pytest.fixture
def chat():
    received: list[dict] = []
    answers: list[int] = []

    async def hook(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return Response("ok" if not answers else "rate_limited",
                        status_code=answers.pop(0) if answers else 200)

    with serve_asgi(Starlette(routes=[Route(HOOK_PATH, hook, methods=["POST"])])) as url:
        yield url, received, answers


def slack(url: str, monkeypatch, path: str = HOOK_PATH) -> SlackSummarySink:
    monkeypatch.setenv("SLACK_HOOK", url + path)
    settings = SlackSummarySink.Settings.model_validate(
        {"url": "${SLACK_HOOK}", "retries": {"backoff": 0.01, "max_backoff": 0.02,
                                              "attempts": 2}})
    return SlackSummarySink(settings, ConnectorContext(org="acme"))


def test_slack_posts_headline_held_and_risks(chat, monkeypatch):
    url, received, _ = chat
    with slack(url, monkeypatch) as sink:
        sink.post(run_summary())
    [body] = received
    assert body["text"].startswith("restock acme")
    flat = json.dumps(body["blocks"])
    assert "Bolt Co" in flat and "22.50" in flat
    assert "order above 500 USD" in flat and "LABEL-ROLL may run out" in flat
    assert all("type" in block for block in body["blocks"])


def test_slack_message_stays_within_slacks_limits(chat, monkeypatch):
    url, received, _ = chat
    base = run_summary()
    held = [base.held[0].model_copy(update={"supplier": f"Supplier {i} " + "x" * 80})
            for i in range(300)]
    risks = [base.risks[0].model_copy(update={"message": f"SKU{i} may run out " + "y" * 200})
             for i in range(300)]
    with slack(url, monkeypatch) as sink:
        sink.post(base.model_copy(update={"held": held, "risks": risks}))
    [body] = received
    assert len(body["blocks"]) <= 50
    for block in body["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= (150 if block["type"] == "header" else 3000)


def test_slack_clips_an_oversized_message():
    from restock_connectors.slack import within_limits
    body = {"text": "t", "blocks": [{"type": "header", "text": {"type": "plain_text",
                                                                  "text": "h" * 400}}]
            + [{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 5000}}] * 80}
    clipped = within_limits(body)
    assert len(clipped["blocks"]) == 50 and clipped["blocks"][-1]["type"] == "context"
    assert "32 more blocks" in clipped["blocks"][-1]["elements"][0]["text"]
    assert len(clipped["blocks"][0]["text"]["text"]) == 150
    assert len(clipped["blocks"][1]["text"]["text"]) == 3000
    assert len(body["blocks"][1]["text"]["text"]) == 5000          # the input is untouched


def test_slack_failure_never_shows_the_webhook_url(chat, monkeypatch):
    url, _, answers = chat
    answers[:] = [500, 500]
    with structlog.testing.capture_logs() as logs, slack(url, monkeypatch) as sink, \
            pytest.raises(ConnectorUnavailable) as caught:
        sink.post(run_summary())
    assert "hookSecret1234567" not in str(caught.value) + repr(logs)
    assert "slack unavailable" in str(caught.value)


def test_slack_url_must_be_a_reference():
    with pytest.raises(ValueError, match="literal secrets are refused"):
        SlackSummarySink.Settings.model_validate({"url": "https://hooks.example/x"})


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_ctx, str(ca_file)


def email_sink(port: int, ca_file: str, monkeypatch, password: str = SMTP_PASSWORD,
               **extra) -> EmailSummarySink:
    monkeypatch.setenv("SMTP_PASSWORD", password)
    settings = EmailSummarySink.Settings.model_validate({
        "host": "127.0.0.1", "port": port, "username": "restock", "password": "${SMTP_PASSWORD}",
        "from_addr": "restock@example.com", "to": ["planning@example.com"], "ca_file": ca_file,
        "timeout": 5, **extra})
    return EmailSummarySink(settings, ConnectorContext(org="acme"))


def test_email_over_starttls_with_auth_has_text_and_html(tls, monkeypatch):
    server_ctx, ca_file = tls
    with serve_smtp(server_ctx, "restock", SMTP_PASSWORD) as (port, mailbox):
        email_sink(port, ca_file, monkeypatch).post(run_summary())
    [message] = mailbox.messages
    assert message["Subject"] == "restock acme: partial, 1 orders"
    assert mailbox.envelopes == [("restock@example.com", ["planning@example.com"])]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "LABEL-ROLL may run out" in text
    assert "<html" in html.lower() and "Acme Components" in text + html


def test_email_wrong_password_is_rejected_and_not_shown(tls, monkeypatch):
    server_ctx, ca_file = tls
    with structlog.testing.capture_logs() as logs, \
            serve_smtp(server_ctx, "restock", SMTP_PASSWORD) as (port, mailbox), \
            pytest.raises(CredentialsRejected, match=r"credentials rejected by email \(127.0.0.1\)"
                          ) as caught:
        email_sink(port, ca_file, monkeypatch, password="wrong-pass-123").post(run_summary())
    assert mailbox.messages == []
    assert "wrong-pass-123" not in str(caught.value) + repr(logs)


def test_email_refuses_an_untrusted_certificate(tls, monkeypatch, tmp_path):
    server_ctx, _ = tls
    other = pytest.importorskip("trustme").CA()
    other_file = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(other_file))
    with serve_smtp(server_ctx, "restock", SMTP_PASSWORD) as (port, mailbox), \
            pytest.raises(ConnectorError, match=r"email \(127.0.0.1\): TLS certificate not "
                                                r"trusted \(set ca_file"):
        email_sink(port, str(other_file), monkeypatch).post(run_summary())
    assert mailbox.messages == []


def test_email_starttls_where_the_server_has_none_says_what_to_change(tls, monkeypatch):
    server_ctx, ca_file = tls
    with serve_smtp(server_ctx, "restock", SMTP_PASSWORD, offer_starttls=False) as (port, box), \
            pytest.raises(ConnectorError, match="does not offer STARTTLS"):
        email_sink(port, ca_file, monkeypatch).post(run_summary())
    assert box.messages == []


def test_email_server_down_is_retriable(tls, monkeypatch):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectorUnavailable, match="email"):
        email_sink(port, tls[1], monkeypatch).post(run_summary())


def test_email_over_implicit_tls(tls, monkeypatch):
    server_ctx, ca_file = tls
    with serve_smtp(server_ctx, "restock", SMTP_PASSWORD, implicit_tls=True) as (port, mailbox):
        email_sink(port, ca_file, monkeypatch, security="tls").post(run_summary())
    assert len(mailbox.messages) == 1


def test_email_temporary_refusal_is_retriable_and_permanent_is_not(tls, monkeypatch):
    server_ctx, ca_file = tls
    with serve_smtp(server_ctx, "restock", SMTP_PASSWORD) as (port, mailbox):
        mailbox.refuse_with[:] = ["451 4.3.0 try again later", "554 5.7.1 rejected as spam"]
        sink = email_sink(port, ca_file, monkeypatch)
        with pytest.raises(ConnectorUnavailable, match=r"email \(127.0.0.1\) unavailable: SMTP 451"):
            sink.post(run_summary())
        with pytest.raises(ConnectorError, match=r"email \(127.0.0.1\): SMTP 554"):
            sink.post(run_summary())
        sink.post(run_summary())
    assert len(mailbox.messages) == 1


def test_email_never_sends_a_password_in_clear():
    with pytest.raises(ValueError, match="never sent in clear"):
        EmailSummarySink.Settings.model_validate({
            "host": "h", "security": "none", "username": "u", "password": "${HOME}",
            "from_addr": "a@b", "to": ["c@d"]})


@pytest.mark.parametrize("subject, message", [
    ("restock {organisation}", r"unknown placeholder \{organisation\} \(known: \{org\}"),
    ("restock {0}", "braces must enclose a placeholder name"),
    ("restock {org", "braces must enclose a placeholder name"),
])
def test_email_subject_placeholders_are_checked_when_loaded(subject, message):
    with pytest.raises(ValueError, match=message):
        EmailSummarySink.Settings.model_validate({
            "host": "h", "from_addr": "a@b", "to": ["c@d"], "subject": subject})


def test_email_addresses_are_checked_when_loaded():
    with pytest.raises(ValueError, match="'planning' is not an email address"):
        EmailSummarySink.Settings.model_validate({"host": "h", "from_addr": "a@b.example",
                                                  "to": ["ok@b.example", "planning"]})


@pytest.fixture
def restore_logging():
    """Undo restock's production logging set up by a test (the test defaults come back)."""
    import logging
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def test_slack_url_never_reaches_the_process_log(chat, monkeypatch, capsys, restore_logging):
    from restock.log import configure
    url, received, answers = chat
    configure(json=True, level="INFO")       # here: it writes to the stream capsys reads
    answers[:] = [500]                       # one retry: the retry event is logged too
    with slack(url, monkeypatch) as sink:
        sink.post(run_summary())
    err = capsys.readouterr().err
    assert len(received) == 2 and "HTTP Request: POST" in err        # httpx did log the calls
    assert "hookSecret1234567" not in err and "http_retry" in err
