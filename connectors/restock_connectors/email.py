"""Email: the run summary as a text + HTML message over SMTP (STARTTLS or TLS, with auth).

YAML::

    summary_sinks:
      - connector: email
        host: smtp.example.com
        port: 587
        security: starttls          # starttls | tls | none (none only without a password)
        username: restock@example.com
        password: ${SMTP_PASSWORD}
        from_addr: restock@example.com
        to: [planning@example.com]
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from restock.config import SecretRef
from restock.connectors import ConnectorSettings, SummarySink
from restock.domain import RunSummary
from restock.errors import ConnectorError, ConnectorUnavailable, CredentialsRejected
from restock.log import get_logger
from restock_connectors.slack import headline

log = get_logger("restock.email")
SUBJECT_FIELDS = ("org", "status", "orders", "held", "run_id")


def _address(value: str) -> str:
    name, _, domain = value.rpartition("@")
    if not name or not domain or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an email address like planning@example.com")
    return value


Address = Annotated[str, AfterValidator(_address)]


class EmailSettings(ConnectorSettings):
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    from_addr: Address
    to: Annotated[list[Address], Field(min_length=1)]
    subject: str = "restock {org}: {status}, {orders} orders"
    timeout: Annotated[float, Field(gt=0)] = 30.0
    ca_file: str | None = None          # trust this CA bundle instead of the system's
    insecure: bool = False              # true: do not verify the server's certificate (warned)

    @model_validator(mode="after")
    def _subject_placeholders_known(self) -> EmailSettings:
        sample = dict.fromkeys(SUBJECT_FIELDS, "x")
        try:
            self.subject.format(**sample)
        except KeyError as err:
            raise ValueError(f"subject: unknown placeholder {{{err.args[0]}}} (known: "
                             + ", ".join(f"{{{f}}}" for f in SUBJECT_FIELDS) + ")") from None
        except (IndexError, ValueError):
            raise ValueError("subject: braces must enclose a placeholder name, "
                             "or be doubled ({{ }}) to be shown") from None
        return self

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> EmailSettings:
        if self.security == "none" and self.password is not None:
            raise ValueError("a password needs security: starttls or tls (never sent in clear)")
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self


class EmailSummarySink(SummarySink):
    """Sends one multipart (text + HTML) message per run summary."""

    Settings = EmailSettings
    name = "email"
    settings: EmailSettings

    @property
    def system(self) -> str:
        return f"email ({self.settings.host})"

    def post(self, summary: RunSummary) -> None:
        message = self.compose(summary)
        try:
            with self._connect() as smtp:
                self._login(smtp)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError:
            raise CredentialsRejected(self.system) from None
        except smtplib.SMTPRecipientsRefused as err:
            raise ConnectorError(self.system, f"recipients refused: "
                                 f"{', '.join(sorted(err.recipients))}") from None
        except smtplib.SMTPResponseException as err:
            if 400 <= err.smtp_code < 500:
                raise ConnectorUnavailable(self.system, f"SMTP {err.smtp_code}") from None
            raise ConnectorError(self.system, f"SMTP {err.smtp_code}") from None
        except smtplib.SMTPNotSupportedError:
            raise ConnectorError(self.system, "the server does not offer STARTTLS "
                                 "(port 465 wants security: tls)") from None
        except ssl.SSLCertVerificationError:     # retrying cannot fix it
            raise ConnectorError(self.system, "TLS certificate not trusted "
                                 "(set ca_file to the CA that signed it)") from None
        except (OSError, smtplib.SMTPException) as err:
            raise ConnectorUnavailable(self.system, err.__class__.__name__) from None

    def compose(self, summary: RunSummary) -> EmailMessage:
        """The message: a subject with the headline numbers, a text part and an HTML part."""
        text, html = render(summary)
        message = EmailMessage()
        message["Subject"] = self.settings.subject.format(
            org=summary.org, status=summary.status.value, orders=len(summary.orders),
            held=len(summary.held), run_id=summary.run_id)
        message["From"] = self.settings.from_addr
        message["To"] = ", ".join(self.settings.to)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(idstring=summary.run_id, domain="restock")
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._tls())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        if s.security == "starttls":
            try:
                smtp.starttls(context=self._tls())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        if self.settings.username and self.settings.password:
            smtp.login(self.settings.username, self.settings.password.get_secret_value())

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.ca_file)
        if self.settings.insecure:
            log.warning("tls_verification_disabled", system=self.system)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def render(summary: RunSummary) -> tuple[str, str]:
    """(text, html): restock.report's renderer when available, a plain fallback otherwise."""
    try:
        from restock.report import render_email
    except ImportError:
        return _fallback(summary)
    return render_email(summary)


def _fallback(summary: RunSummary) -> tuple[str, str]:
    lines = [headline(summary), ""]
    lines += [f"Order to {po.supplier}: {po.total:,.2f} {po.currency} ({len(po.lines)} lines)"
              for po in summary.orders]
    lines += [f"Held: {po.supplier}: " + "; ".join(r.message for r in po.held_reasons)
              for po in summary.held]
    lines += [f"Risk: {r.message}" for r in summary.risks]
    lines += [f"Error: {e}" for e in summary.errors]
    text = "\n".join(lines) + "\n"
    items = "".join(f"<li>{escape(line)}</li>" for line in lines[2:])
    html = (f"<!doctype html><html><body><h1>{escape(headline(summary))}</h1>"
            f"<ul>{items}</ul></body></html>")
    return text, html


summary_sink = EmailSummarySink
