"""How self-service messages (reset, verification, invitation tokens) reach people.

A :class:`Delivery` has one method, ``send(to, subject, text)``. ``delivery:`` in the
provider's config picks :class:`SmtpDelivery`, :class:`LogDelivery` or a site's own
``module:callable``. A delivery that cannot send raises
:class:`~authcore.ProviderUnavailable`; its message never holds the text (the token) nor
the SMTP password.
"""

from __future__ import annotations

import importlib
import logging
import smtplib
import ssl
from collections import deque
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol, runtime_checkable

from authcore import ConfigError, ProviderUnavailable

from .config import LocalConfig, SmtpConfig

__all__ = ["Delivery", "SmtpDelivery", "LogDelivery", "CallableDelivery", "make_delivery"]

log = logging.getLogger("auth_local.delivery")


@runtime_checkable
class Delivery(Protocol):
    """Sends one message to one address; :class:`~authcore.ProviderUnavailable` when it cannot."""

    def send(self, to: str, subject: str, text: str) -> None:
        """Deliver *text* (which holds a secret token: never log it) to *to*."""
        ...  # pragma: no cover


class SmtpDelivery:
    """E-mail through an SMTP server (``smtplib``): STARTTLS, implicit TLS or plain for a local relay.

    With TLS the server's certificate and host name are always checked (:meth:`tls_context`).
    """

    def __init__(self, smtp: SmtpConfig) -> None:
        self.smtp = smtp

    def __repr__(self) -> str:
        s = self.smtp
        ca_file = None if s.ca_file is None else str(s.ca_file)
        return f"SmtpDelivery(host={s.host!r}, port={s.port}, security={s.security!r}, ca_file={ca_file!r})"

    def message(self, to: str, subject: str, text: str) -> EmailMessage:
        """The message as sent: ``From`` the configured address, a fresh ``Message-ID``."""
        message = EmailMessage()
        message["From"] = self.smtp.from_address
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=self.smtp.from_address.rpartition("@")[2] or None)
        message.set_content(text)
        return message

    def tls_context(self) -> ssl.SSLContext:
        """What the server's certificate is checked with: ``ca_file``'s CAs, or the system's.

        ``create_default_context`` verifies the chain and the host name; nothing here ever
        relaxes either. Made for each connection, so a renewed ``ca_file`` needs no restart.
        """
        ca_file = self.smtp.ca_file
        return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)

    def _connect(self) -> smtplib.SMTP:
        s = self.smtp
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self.tls_context())
        context = self.tls_context() if s.security == "starttls" else None
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if context is not None:
                client.starttls(context=context)
        except BaseException:
            client.close()
            raise
        return client

    def send(self, to: str, subject: str, text: str) -> None:
        """Connect, log in if configured, send, quit. Failures name the error's class only."""
        s = self.smtp
        try:
            message = self.message(to, subject, text)
        except (ValueError, TypeError):  # a header the e-mail package refuses (a newline, say)
            raise ProviderUnavailable("the message could not be built for that address") from None
        try:
            with self._connect() as client:
                if s.username is not None and s.password is not None:
                    client.login(s.username, s.password.get_secret_value())
                client.send_message(message)
        except ssl.SSLCertVerificationError as exc:
            # OpenSSL's own words (issuer unknown, host name mismatch): made here, they hold nothing sent.
            raise ProviderUnavailable(
                f"the mail server {s.host}:{s.port} was refused: its TLS certificate is not trusted "
                f"(SSLCertVerificationError: {exc.verify_message}); a site's own CA goes in smtp.ca_file"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            # Only the class: an SMTP reply may echo what we sent.
            raise ProviderUnavailable(
                f"the mail server {s.host}:{s.port} did not take the message ({type(exc).__name__})"
            ) from None


class LogDelivery:
    """Development: writes that a message went to whom, and the text only with ``log_tokens``."""

    def __init__(self, *, log_tokens: bool = False) -> None:
        self.log_tokens = log_tokens
        #: The latest messages "sent", as (to, subject), for a development UI to show (bounded).
        self.sent: deque[tuple[str, str]] = deque(maxlen=100)

    def __repr__(self) -> str:
        return f"LogDelivery(log_tokens={self.log_tokens})"

    def send(self, to: str, subject: str, text: str) -> None:
        """Log one line (and the text, which holds the token, only when asked to)."""
        self.sent.append((to, subject))
        if self.log_tokens:
            log.warning("message %r to %s (log_tokens is on; development only):\n%s", subject, to, text)
        else:
            log.info("message %r sent to %s (delivery: log; the text is not logged)", subject, to)


class CallableDelivery:
    """A site's own delivery: a callable ``f(to, subject, text)`` named ``module:callable``."""

    def __init__(self, target: str, function: Callable[[str, str, str], Any]) -> None:
        self.target = target
        self.function = function

    def __repr__(self) -> str:
        return f"CallableDelivery({self.target!r})"

    def send(self, to: str, subject: str, text: str) -> None:
        """Call the site's function; its own errors other than ProviderUnavailable become one."""
        try:
            self.function(to, subject, text)
        except ProviderUnavailable:
            raise
        except Exception as exc:
            raise ProviderUnavailable(f"delivery {self.target!r} failed ({type(exc).__name__})") from None


def make_delivery(name: str, config: LocalConfig) -> Delivery:
    """The delivery ``config.delivery`` names; :class:`~authcore.ConfigError` if it cannot be loaded."""
    if config.delivery == "smtp":
        assert config.smtp is not None  # the config's validator insists
        return SmtpDelivery(config.smtp)
    if config.delivery == "log":
        return LogDelivery(log_tokens=config.log_tokens)
    module_name, _, attribute = config.delivery.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        raise ConfigError(f"provider {name!r}: delivery {config.delivery!r} cannot be imported") from None
    if isinstance(target, Delivery) and not isinstance(target, type):
        return target
    if not callable(target):
        raise ConfigError(f"provider {name!r}: delivery {config.delivery!r} is neither callable nor has send()")
    return CallableDelivery(config.delivery, target)
