"""Messages by e-mail, through the SMTP server ``SENTINEL_SMTP_URL`` names:
``smtp://[user:password@]host[:port][?from=address&starttls=1]`` (port 25 by default),
or ``smtps://…`` (TLS from the start, port 465). Each message has a plain-text part and
an HTML one."""

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from app.notify.messages import Message

DEFAULT_FROM = "sentinel@localhost"


class MailNotConfigured(Exception):
    """No SMTP server is set: e-mail channels cannot send."""


def email_of(message: Message, *, sender: str, recipients: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = formataddr(("Flowing Sentinel 流动哨兵", sender))
    mail["To"] = ", ".join(recipients)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    text = "\n".join([message.title, "", *message.lines])
    if message.link:
        text += f"\n\n{message.link_text}: {message.link}"
    mail.set_content(text)
    items = "".join(f"<li>{html.escape(line)}</li>" for line in message.lines)
    link = (
        f'<p><a href="{html.escape(message.link)}">{html.escape(message.link_text)}</a></p>'
        if message.link
        else ""
    )
    mail.add_alternative(
        f"<!doctype html><html><body><h2>{html.escape(message.title)}</h2>"
        f"<ul>{items}</ul>{link}</body></html>",
        subtype="html",
    )
    return mail


def send_mail(
    smtp_url: str | None, message: Message, *, recipients: list[str], timeout: float
) -> None:
    """Sends ``message`` to ``recipients``; raises ``MailNotConfigured`` without a
    server, an ``OSError`` (``smtplib.SMTPException`` among them) when it fails."""
    if not smtp_url:
        raise MailNotConfigured("SENTINEL_SMTP_URL is not set")
    parts = urlsplit(smtp_url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    sender = options.get("from", DEFAULT_FROM)
    host = parts.hostname or "localhost"
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (465 if implicit_tls else 25)
    mail = email_of(message, sender=sender, recipients=recipients)
    smtp_class = smtplib.SMTP_SSL if implicit_tls else smtplib.SMTP
    with smtp_class(host, port, timeout=timeout) as smtp:
        if not implicit_tls and options.get("starttls") in ("1", "true", "yes"):
            smtp.starttls(context=ssl.create_default_context())
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(mail, from_addr=sender, to_addrs=recipients)
