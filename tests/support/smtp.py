"""A real SMTP server (aiosmtpd) on an OS-assigned loopback port, with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_with: list[str] = field(default_factory=list)   # answers to DATA before accepting

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse_with:
            return self.refuse_with.pop(0)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@contextmanager
def serve_smtp(tls: ssl.SSLContext, username: str, password: str, *, implicit_tls: bool = False,
               offer_starttls: bool = True) -> Iterator[tuple[int, Mailbox]]:
    """STARTTLS required before AUTH (or TLS from the first byte, or no TLS at all when
    ``offer_starttls`` is false); yields (port, mailbox)."""
    starttls = offer_starttls and not implicit_tls
    mailbox = Mailbox()

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and \
            auth_data.login.decode() == username and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)   # let aiosmtpd answer 535

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(mailbox, tls_context=tls if starttls else None,
                     require_starttls=starttls, authenticator=authenticator,
                     auth_require_tls=starttls, hostname="restock-test"),
        sock=sock, ssl=tls if implicit_tls else None))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], mailbox
    finally:
        asyncio.run_coroutine_threadsafe(_shut(server), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _shut(server: asyncio.Server) -> None:
    """Close the listener and end the sessions still open, so no task is left pending."""
    server.close()
    sessions = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in sessions:
        task.cancel()
    await asyncio.gather(*sessions, return_exceptions=True)
