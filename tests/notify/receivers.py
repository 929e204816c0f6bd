"""Receivers on 127.0.0.1 that stand in for the services the channels talk to, each
checking the request the way its documentation describes it, and answering as it does:

- WeCom group robot: ``POST /cgi-bin/webhook/send?key=…``, ``{"msgtype": "markdown",
  "markdown": {"content"}}``, content at most 4,096 bytes → ``{"errcode": 0}``.
- DingTalk custom robot: ``POST /robot/send?access_token=…[&timestamp=&sign=]``,
  ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; ``sign`` =
  urlencode(base64(HMAC-SHA256(key=secret, "timestamp\\nsecret"))) → ``{"errcode": 0}``,
  a bad signature ``{"errcode": 310000}``.
- Feishu custom bot: ``POST /open-apis/bot/v2/hook/<token>``, ``{"msg_type": "post",
  "content": {"post": {"zh_cn"|"en_us": {"title", "content": [[…]]}}}}`` with
  ``timestamp`` and ``sign`` = base64(HMAC-SHA256(key="timestamp\\nsecret", b"")) →
  ``{"code": 0}``, a bad signature ``{"code": 19021}``.
- A webhook: ``POST /hook``, JSON, ``X-Sentinel-Signature: t=…,v1=hex(HMAC-SHA256(secret,
  "t.body"))``.

Refused requests are kept apart (``refused``) with the reason; ``down`` makes every
answer a 503 (a receiver that is out)."""

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    kind: str
    body: dict[str, Any]
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def text(self) -> str:
        """All the words of the message, whatever its shape."""
        return json.dumps(self.body, ensure_ascii=False)


@dataclass
class Receivers:
    secrets: dict[str, str] = field(default_factory=dict)  # kind → its secret
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def of(self, kind: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.kind == kind]

    def urls(self) -> dict[str, str]:
        return {
            "wecom": f"{self.base}/cgi-bin/webhook/send?key=wecom-key-123456",
            "dingtalk": f"{self.base}/robot/send?access_token=ding-token-123456",
            "feishu": f"{self.base}/open-apis/bot/v2/hook/feishu-token-123456",
            "webhook": f"{self.base}/hook",
        }


def _check_wecom(body: dict[str, Any], query: dict[str, str], secret: str | None) -> str | None:
    if not query.get("key"):
        return "no key"
    if body.get("msgtype") != "markdown" or not isinstance(body.get("markdown"), dict):
        return "not markdown"
    content = body["markdown"].get("content")
    if not isinstance(content, str) or not content:
        return "no content"
    if len(content.encode()) > 4096:
        return "content over 4096 bytes"
    return None


def _check_dingtalk(body: dict[str, Any], query: dict[str, str], secret: str | None) -> str | None:
    if not query.get("access_token"):
        return "no access_token"
    markdown = body.get("markdown")
    if body.get("msgtype") != "markdown" or not isinstance(markdown, dict):
        return "not markdown"
    if not markdown.get("title") or not markdown.get("text"):
        return "markdown needs title and text"
    if secret:
        timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
        mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
        if not timestamp.isdigit() or len(timestamp) < 13:
            return "timestamp must be milliseconds"
        if sign != base64.b64encode(mac.digest()).decode():
            return "bad sign"
    return None


def _check_feishu(body: dict[str, Any], query: dict[str, str], secret: str | None) -> str | None:
    post = (body.get("content") or {}).get("post")
    if body.get("msg_type") != "post" or not isinstance(post, dict) or len(post) != 1:
        return "not a post"
    ((lang, content),) = post.items()
    if lang not in ("zh_cn", "en_us") or not content.get("title"):
        return "post needs a language and a title"
    rows = content.get("content")
    if not isinstance(rows, list) or not all(
        isinstance(row, list) and all(isinstance(item, dict) and "tag" in item for item in row)
        for row in rows
    ):
        return "content is rows of tagged items"
    if secret:
        timestamp = str(body.get("timestamp", ""))
        mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
        if not timestamp.isdigit() or len(timestamp) > 11:
            return "timestamp must be seconds"
        if body.get("sign") != base64.b64encode(mac.digest()).decode():
            return "bad sign"
    return None


def _check_webhook(raw: bytes, headers: dict[str, str], secret: str | None) -> str | None:
    if secret:
        signature = headers.get("x-sentinel-signature", "")
        parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
        mac = hmac.new(secret.encode(), f"{parts.get('t', '')}.".encode() + raw, hashlib.sha256)
        if parts.get("v1") != mac.hexdigest():
            return "bad signature"
    return None


def start(receivers: Receivers) -> Receivers:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if receivers.down:
                self._answer(503, {"error": "down"})
                return
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(400, {"errcode": 40001, "errmsg": "not json"})
                return
            if url.path == "/cgi-bin/webhook/send":
                kind, why = "wecom", _check_wecom(body, query, None)
                bad = {"errcode": 40058, "errmsg": why}
            elif url.path == "/robot/send":
                kind, why = (
                    "dingtalk",
                    _check_dingtalk(body, query, receivers.secrets.get("dingtalk")),
                )
                bad = {"errcode": 310000, "errmsg": why}
            elif url.path.startswith("/open-apis/bot/v2/hook/"):
                kind, why = "feishu", _check_feishu(body, query, receivers.secrets.get("feishu"))
                bad = {"code": 19021, "msg": why}
            elif url.path == "/hook":
                kind, why = (
                    "webhook",
                    _check_webhook(raw, headers, receivers.secrets.get("webhook")),
                )
                bad = {"error": why}
            else:
                self._answer(404, {"error": "no such path"})
                return
            with receivers.lock:
                if why is None:
                    receivers.received.append(Received(kind, body, query, headers))
                else:
                    receivers.refused.append((kind, why))
            if why is not None:
                self._answer(200 if kind != "webhook" else 401, bad)
            elif kind == "feishu":
                self._answer(200, {"code": 0, "msg": "success", "data": {}})
            else:
                self._answer(200, {"errcode": 0, "errmsg": "ok"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    receivers.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receivers.server.serve_forever, daemon=True).start()
    return receivers
