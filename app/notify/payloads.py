"""Each service's request, in the shape its documentation gives, and how it says the
message arrived.

- WeCom group robot (企业微信群机器人): POST the robot's URL with ``{"msgtype":
  "markdown", "markdown": {"content"}}`` (at most 4,096 bytes); it answers
  ``{"errcode": 0}``.
- DingTalk custom robot (钉钉自定义机器人): ``{"msgtype": "markdown", "markdown":
  {"title", "text"}}``; with a secret (加签) the URL adds ``timestamp`` (ms) and ``sign``
  = base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")), URL-encoded; ``{"errcode": 0}``.
- Feishu custom bot (飞书自定义机器人): ``{"msg_type": "post", "content": {"post":
  {"zh_cn": {"title", "content": [[…]]}}}}``; with a secret the body adds
  ``timestamp`` (s) and ``sign`` = base64(HMAC-SHA256(key="timestamp\\nsecret", empty
  message)); it answers ``{"code": 0}``.
- A webhook: the JSON event, signed as the platforms' webhooks are
  (``X-Sentinel-Signature: t=…,v1=…``).

Those robots answer HTTP 200 also when they refuse (a bad signature, a throttle): the
body's code decides.

Written here rather than through apprise, which covers these services: apprise sends to
each service's own host from its own URL scheme and says only whether it worked, while
these requests must go to the address the SSRF check passed (as every call out does,
``app.platforms.call_checked``) and leave their status and the service's answer in the
channel's log."""

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from app.models import ChannelKind
from app.notify.messages import Message
from app.text import rfc3339_utc

USER_AGENT = "FlowingSentinel-Notify/1"
WECOM_MAX_BYTES = 4096
SIGNATURE_HEADER = "X-Sentinel-Signature"
EVENT_ID_HEADER = "X-Sentinel-Event-Id"


@dataclass(frozen=True)
class Outgoing:
    url: str
    headers: dict[str, str]
    body: bytes


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# Riders' words go into the robots' markdown as words: the characters markdown would act
# on become their full-width twins (as Chinese text writes them anyway), so that nobody's
# "[点我](http://…)" or "![](http://…)" turns into a link or an image in the office's group.
DEFANG = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "!": "！",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "#": "＃",
        "<": "＜",
        ">": "＞",
        "|": "｜",
        "~": "～",
        "\n": " ",
        "\r": " ",
    }
)


def defanged(text: str) -> str:
    return text.translate(DEFANG)


def markdown(message: Message, *, limit: int | None = None) -> str:
    """The message as the robots' markdown: a heading, quoted lines, the link — its
    words defanged, the link the only markup."""
    parts = [
        f"### {defanged(message.title)}",
        *(f"> {defanged(line)}" for line in message.lines),
    ]
    if message.link:
        parts.append(f"[{message.link_text or message.link}]({message.link})")
    text = "\n".join(parts)
    if limit is not None:
        while len(text.encode()) > limit:  # the robot refuses longer ones
            text = text[: max(len(text) - 64, 0)]
    return text


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def webhook_signature(secret: str, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def outgoing(
    kind: ChannelKind,
    *,
    url: str,
    secret: str | None,
    message: Message,
    lang: str,
    event: str,
    facts: dict[str, Any],
    now: datetime,
    delivery_id: uuid.UUID,
) -> Outgoing:
    """The request that carries ``message`` to a channel of ``kind`` (not e-mail)."""
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    seconds = int(now.timestamp())
    if kind == ChannelKind.WECOM:
        body = {
            "msgtype": "markdown",
            "markdown": {"content": markdown(message, limit=WECOM_MAX_BYTES)},
        }
        return Outgoing(url, headers, _json(body))
    if kind == ChannelKind.DINGTALK:
        body = {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": markdown(message)},
        }
        if secret:
            millis = seconds * 1000
            sign = quote_plus(dingtalk_sign(secret, millis))
            url = f"{url}{'&' if '?' in url else '?'}timestamp={millis}&sign={sign}"
        return Outgoing(url, headers, _json(body))
    if kind == ChannelKind.FEISHU:
        rows: list[list[dict[str, str]]] = [
            [{"tag": "text", "text": line}] for line in message.lines
        ]
        if message.link:
            rows.append(
                [{"tag": "a", "text": message.link_text or message.link, "href": message.link}]
            )
        post = {"zh_cn" if lang == "zh" else "en_us": {"title": message.title, "content": rows}}
        feishu: dict[str, Any] = {"msg_type": "post", "content": {"post": post}}
        if secret:
            feishu = {"timestamp": str(seconds), "sign": feishu_sign(secret, seconds), **feishu}
        return Outgoing(url, headers, _json(feishu))
    event_body = _json(
        {
            "id": str(delivery_id),
            "type": event,
            "created_at": rfc3339_utc(now),
            "data": {
                **facts,
                "title": message.title,
                "lines": message.lines,
                "link": message.link,
            },
        }
    )
    headers[EVENT_ID_HEADER] = str(delivery_id)
    if secret:
        headers[SIGNATURE_HEADER] = webhook_signature(secret, event_body, timestamp=seconds)
    return Outgoing(url, headers, event_body)


def accepted(kind: ChannelKind, *, status: int, body: bytes) -> str | None:
    """None if the service took the message; else why not, for the delivery log."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    if kind not in (ChannelKind.WECOM, ChannelKind.DINGTALK, ChannelKind.FEISHU):
        return None
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return "the answer is not JSON"
    if not isinstance(answer, dict):
        return "the answer is not a JSON object"
    code = (
        answer.get("code", answer.get("StatusCode", 0))
        if kind == ChannelKind.FEISHU
        else answer.get("errcode", 0)
    )
    if code in (0, None):
        return None
    said = answer.get("msg") or answer.get("errmsg") or answer.get("StatusMessage") or ""
    return f"{kind} refused it: {code} {said}"[:500]
