"""docs/integration.md, run: every example of the integration walk-through is sent, in
order, to a sandbox exchange running as its own processes (web server and worker, as
tests/test_sandbox_blackbox.py starts them), and every answer is checked against the one
the document shows. HTTP only: nothing of the exchange is imported but the helpers that
start its processes.

The document's conventions (its section "How to read the examples" says the same):

* A ```http block is a request: the request line, headers, a blank line, the body. The
  next fenced block is its answer, also ```http: the status line, the headers that matter,
  a blank line and the body, abbreviated. Keys not shown are not checked; a list shows its
  first elements (`[]`: an empty list); a header is checked by its value (for a media type,
  without its parameters); a body that is not JSON is checked line by line: each line
  shown appears in it.
* `{name}` is a value that differs per run. In a request it is filled in from earlier
  answers; in an answer, the first time it is met it takes the value found there (inside a
  string, the part it stands for), and afterwards the value must be the same.
* ```http webhook secret=NAME is a request the exchange sends to your endpoint: the test's
  receiver must get one that matches, and the document's Python `verify` (its ```python
  block) must accept its signature under the secret `{NAME}`.
* ```email is an e-mail the exchange sends: `To:` and `Subject:` headers, then lines of
  its text.
* HTML comments steer the run: `<!-- set: name = other + 31 days -->` (or `date(other)`)
  computes a value; `<!-- each: name = a b c -->` runs the next request
  once per value; `<!-- page-token: name email=… password=… scopes="…" -->` is the
  account page's token form, which the test fills in over HTTP as a browser would.

A GET whose answer depends on the worker (a lot opening, closing) is repeated until it
matches, for up to POLL_S seconds; so is the search for an e-mail or a webhook.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.servers import catching_mail, run_market, running_server, running_worker

DOC = Path(__file__).resolve().parents[1] / "docs" / "integration.md"
PUBLIC_URL = "https://sandbox.ipx.example.cn"  # the exchange's address in the document
POLL_S = 20.0
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
NEW_TOKEN = re.compile(r'data-testid="new-token">([^<]+)<')
CHINA = ZoneInfo("Asia/Shanghai")


class Mismatch(AssertionError):
    """An answer that is not the one the document shows."""


# --- the document ----------------------------------------------------------------------


@dataclass
class Message:
    """An HTTP message as the document writes it: start line, headers, body."""

    start: str
    headers: list[tuple[str, str]]
    body: str


@dataclass
class Step:
    kind: str  # request, webhook, email, set, page_token
    line: int  # where it starts in the document
    message: Message | None = None
    expected: Message | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    each: tuple[str, list[str]] | None = None


@dataclass
class Walkthrough:
    steps: list[Step]
    code: str  # the ```python blocks, joined


def _message(text: str) -> Message:
    head, _, body = text.partition("\n\n")
    lines = head.splitlines()
    headers = []
    for raw in lines[1:]:
        name, sep, value = raw.partition(":")
        if not sep:
            raise ValueError(f"not a header: {raw!r}")
        headers.append((name.strip(), value.strip()))
    return Message(start=lines[0].strip(), headers=headers, body=body.strip("\n"))


def _attrs(words: list[str]) -> dict[str, str]:
    return dict(w.partition("=")[::2] for w in words)


def parse(markdown: str) -> Walkthrough:
    """The steps of a walk-through, in order (the conventions: the module's docstring)."""
    items: list[tuple[int, str, str]] = []  # (line, "block:<info>" | "comment", text)
    lines = markdown.splitlines()
    n = 0
    while n < len(lines):
        line = lines[n]
        if line.lstrip().startswith("```"):  # a fence, maybe indented inside a list item
            indent = len(line) - len(line.lstrip())
            info, start, body = line.strip()[3:].strip(), n + 1, []
            n += 1
            while n < len(lines) and not lines[n].lstrip().startswith("```"):
                body.append(lines[n][indent:] if lines[n][:indent].isspace() else lines[n])
                n += 1
            if n == len(lines):
                raise ValueError(f"line {start}: fence not closed")
            items.append((start, "block:" + info, "\n".join(body)))
        elif m := re.fullmatch(r"\s*<!--\s*(.*?)\s*-->\s*", line):
            items.append((n + 1, "comment", m.group(1)))
        n += 1
    steps: list[Step] = []
    code: list[str] = []
    each: tuple[str, list[str]] | None = None
    k = 0
    while k < len(items):
        at, kind, text = items[k]
        k += 1
        if kind == "comment":
            verb, _, rest = text.partition(":")
            if verb == "set":
                name, _, expr = rest.partition("=")
                steps.append(Step("set", at, attrs={"name": name.strip(), "expr": expr.strip()}))
            elif verb == "each":
                name, _, values = rest.partition("=")
                each = (name.strip(), values.split())
            elif verb == "page-token":
                words = shlex.split(rest)
                steps.append(Step("page_token", at, attrs={"name": words[0], **_attrs(words[1:])}))
            continue
        info = kind.removeprefix("block:").split()
        lang, attrs = (info[0] if info else ""), _attrs(info[1:])
        if lang == "python":
            code.append(text)
        elif lang == "email":
            steps.append(Step("email", at, message=_message("EMAIL\n" + text)))
        elif lang == "http" and "webhook" in attrs:
            steps.append(Step("webhook", at, message=_message(text), attrs=attrs))
        elif lang == "http":
            if text.startswith("HTTP/"):
                raise ValueError(f"line {at}: an answer without its request")
            if k == len(items) or not items[k][2].startswith("HTTP/"):
                raise ValueError(f"line {at}: a request not followed by its answer")
            answer = _message(items[k][2])
            k += 1
            steps.append(Step("request", at, _message(text), answer, attrs, each))
            each = None
    return Walkthrough(steps, "\n\n".join(code))


# --- matching an answer against the document -------------------------------------------


def fill(text: str, known: dict[str, Any]) -> str:
    """`text` with every placeholder replaced by its value; an unknown one fails."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in known:
            raise Mismatch(f"{{{m.group(1)}}} is used before any answer gave it")
        return str(known[m.group(1)])

    return PLACEHOLDER.sub(value, text)


def _pattern(text: str, known: dict[str, Any], capture: str = ".+?") -> re.Pattern[str]:
    """A regular expression of a documented string: placeholders known stand for their
    value, unknown ones capture what is there (`capture`)."""
    parts, seen, last = [], set(), 0
    for m in PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[last : m.start()]))
        name = m.group(1)
        if name in known:
            parts.append(re.escape(str(known[name])))
        elif name in seen:
            parts.append(f"(?P={name})")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>{capture})")
        last = m.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts), re.DOTALL)


def _quote_bare_placeholders(text: str) -> str:
    """JSON with `{name}` written where a value goes (`"id": {case_id}`) made parseable:
    such a placeholder becomes the string "{name}", which matches any value."""
    out, in_string, escaped, n = [], False, False, 0
    while n < len(text):
        c = text[n]
        if in_string:
            escaped = c == "\\" and not escaped
            if c == '"' and not escaped:
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{" and (m := PLACEHOLDER.match(text, n)):
            out.append(f'"{m.group(0)}"')
            n = m.end()
            continue
        out.append(c)
        n += 1
    return "".join(out)


def expect(documented: Any, actual: Any, known: dict[str, Any], path: str = "$") -> None:
    """Check `actual` against what the document shows, taking unknown placeholders' values
    into `known`. Raises Mismatch naming the path."""
    if isinstance(documented, str) and (m := PLACEHOLDER.fullmatch(documented)):
        name = m.group(1)
        if name not in known:
            known[name] = actual
        elif known[name] != actual and str(known[name]) != str(actual):
            raise Mismatch(f"{path}: {actual!r}, but {{{name}}} was {known[name]!r}")
        return
    if isinstance(documented, str) and PLACEHOLDER.search(documented):
        found = _pattern(documented, known).fullmatch(str(actual))
        if found is None or not isinstance(actual, str):
            raise Mismatch(f"{path}: {actual!r} is not {documented!r}")
        known.update(found.groupdict())
        return
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{path}: {actual!r} is no object")
        for key, value in documented.items():
            if key not in actual:
                raise Mismatch(f"{path}: no key {key!r} in {sorted(actual)}")
            expect(value, actual[key], known, f"{path}.{key}")
        return
    if isinstance(documented, list):
        if not isinstance(actual, list):
            raise Mismatch(f"{path}: {actual!r} is no list")
        if not documented and actual:
            raise Mismatch(f"{path}: {len(actual)} elements, the document shows none")
        if len(actual) < len(documented):
            raise Mismatch(f"{path}: {len(actual)} elements, the document shows more")
        for i, value in enumerate(documented):
            expect(value, actual[i], known, f"{path}[{i}]")
        return
    if type(documented) is not type(actual) or documented != actual:
        raise Mismatch(f"{path}: {actual!r}, the document shows {documented!r}")


def expect_text(documented: str, actual: str, known: dict[str, Any]) -> None:
    """Each line the document shows appears in the text."""
    for line in documented.splitlines():
        if line.strip():
            # In running text a value ends where a word does (a CSV cell, a link).
            found = _pattern(line.strip(), known, r"[^\s,;]+").search(actual)
            if found is None:
                raise Mismatch(f"no line {line.strip()!r} in:\n{actual[:2000]}")
            known.update(found.groupdict())


def expect_headers(
    documented: list[tuple[str, str]], actual: httpx.Headers, known: dict[str, Any]
) -> None:
    for name, value in documented:
        got = actual.get(name)
        if got is None:
            raise Mismatch(f"no header {name}")
        pattern = _pattern(value, known)
        found = pattern.fullmatch(got) or pattern.fullmatch(got.split(";")[0].strip())
        if found is None:
            raise Mismatch(f"header {name}: {got!r}, the document shows {value!r}")
        known.update(found.groupdict())


def expect_body(documented: str, raw: bytes, media: str, known: dict[str, Any]) -> None:
    if not documented.strip():
        return
    if media.endswith("json"):
        try:
            actual = json.loads(raw)
        except ValueError:
            raise Mismatch(f"not JSON: {raw[:300]!r}") from None
        expect(json.loads(_quote_bare_placeholders(documented)), actual, known)
    else:
        expect_text(documented, raw.decode("utf-8-sig", "replace"), known)


def check_answer(expected: Message, response: httpx.Response, known: dict[str, Any]) -> None:
    """The response is the one documented: status, headers, body; captures go to `known`
    only if everything matches."""
    status = int(expected.start.split()[1])
    if response.status_code != status:
        raise Mismatch(f"status {response.status_code}, not {status}: {response.text[:1500]}")
    found = dict(known)
    expect_headers(expected.headers, response.headers, found)
    media = response.headers.get("content-type", "").split(";")[0]
    expect_body(expected.body, response.content, media, found)
    known.update(found)


def compute(expr: str, known: dict[str, Any]) -> str:
    """A `set:` expression: `name + 31 days` (or hours, minutes, seconds) or `date(name)`,
    the day in China."""
    if m := re.fullmatch(r"([a-z_0-9]+)\s*\+\s*(\d+)\s*(days|hours|minutes|seconds)", expr):
        at = datetime.fromisoformat(str(known[m.group(1)])).astimezone(UTC)
        at = at.replace(microsecond=0) + timedelta(**{m.group(3): int(m.group(2))})
        return at.isoformat().replace("+00:00", "Z")
    if m := re.fullmatch(r"date\(([a-z_0-9]+)\)", expr):
        return datetime.fromisoformat(str(known[m.group(1)])).astimezone(CHINA).date().isoformat()
    raise ValueError(f"cannot compute {expr!r}")


# --- the unit checks of the parser and matcher ------------------------------------------

SAMPLE = """
<!-- set: later = now + 1 days -->
```http
POST /api/v1/cases/ HTTP/1.1
Authorization: Bearer {token}

{"loan_id": {loan_id}}
```
```http
HTTP/1.1 201 Created
Content-Type: application/json

{"id": {case_id}, "reference": "CASE-{case_no}", "status": "open", "lots": []}
```
"""


def test_the_parser_reads_requests_answers_and_steering_comments() -> None:
    walk = parse(SAMPLE)
    assert [s.kind for s in walk.steps] == ["set", "request"]
    request = walk.steps[1]
    assert request.message is not None and request.expected is not None
    assert request.message.start == "POST /api/v1/cases/ HTTP/1.1"
    assert request.message.headers == [("Authorization", "Bearer {token}")]
    assert fill(request.message.body, {"loan_id": 7}) == '{"loan_id": 7}'
    assert compute("later + 1 days", {"later": "2026-01-05T10:00:00.5+08:00"}) == (
        "2026-01-06T02:00:00Z"
    )
    assert compute("date(later)", {"later": "2026-01-05T17:00:00Z"}) == "2026-01-06"
    with pytest.raises(ValueError, match="not followed by its answer"):
        parse("```http\nGET /x\n```\n")


def _answer(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_the_matcher_captures_placeholders_and_fails_on_a_wrong_field() -> None:
    expected = parse(SAMPLE).steps[1].expected
    assert expected is not None
    known: dict[str, Any] = {}
    good = {"id": 12, "reference": "CASE-2026-0012", "status": "open", "lots": [], "more": 1}
    check_answer(expected, _answer(201, good), known)
    assert known == {"case_id": 12, "case_no": "2026-0012"}
    # Once known, a placeholder must keep its value.
    with pytest.raises(Mismatch, match=r"\$\.id"):
        check_answer(expected, _answer(201, {**good, "id": 13}), known)
    # A wrong literal, a missing key, a wrong status or a non-empty list shown empty fail,
    # and capture nothing.
    for wrong, status in (
        ({**good, "status": "closed"}, 201),
        ({k: v for k, v in good.items() if k != "reference"}, 201),
        ({**good, "reference": "LOT-1"}, 201),
        ({**good, "lots": [{"id": 1}]}, 201),
        (good, 200),
    ):
        fresh: dict[str, Any] = {}
        with pytest.raises(Mismatch):
            check_answer(expected, _answer(status, wrong), fresh)
        assert fresh == {}
    # Lists: the first elements, in order; a string is not a number.
    expect([{"a": 1}], [{"a": 1, "b": 2}, {"a": 3}], {})
    with pytest.raises(Mismatch):
        expect([{"a": 3}], [{"a": 1}, {"a": 3}], {})
    with pytest.raises(Mismatch):
        expect({"amount_fen": 100}, {"amount_fen": "100"}, {})
    # Headers by value (a media type without its parameters); text bodies by line.
    headers = httpx.Headers({"Content-Type": "application/problem+json; charset=utf-8"})
    expect_headers([("Content-Type", "application/problem+json")], headers, {})
    with pytest.raises(Mismatch):
        expect_headers([("Content-Type", "application/json")], headers, {})
    found: dict[str, Any] = {}
    expect_text("ref,{ref}\n", "date,amount\nref,PO-7\n", found)
    assert found == {"ref": "PO-7"}
    with pytest.raises(Mismatch):
        expect_text("ref,PO-8", "ref,PO-7", {})


def test_the_document_parses_and_uses_no_value_before_it_is_given() -> None:
    """Statically: every placeholder a request sends was given by an earlier answer, an
    earlier e-mail or webhook, a `set:`, a page token or the test's receiver."""
    walk = parse(DOC.read_text(encoding="utf-8"))
    assert {"request", "webhook", "email", "page_token", "set"} <= {s.kind for s in walk.steps}
    assert "def verify(" in walk.code
    known = set(PRESET)
    for step in walk.steps:
        if step.kind in ("set", "page_token"):
            used = set(re.findall(r"[a-z][a-z0-9_]*", step.attrs.get("expr", ""))) - {"date"}
            used -= {"days", "hours", "minutes", "seconds"}
            assert used <= known, f"line {step.line}: {sorted(used - known)} not yet given"
            known.add(step.attrs["name"])
            continue
        assert step.message is not None
        headers = [v for _, v in step.message.headers]
        placed = set(
            PLACEHOLDER.findall("\n".join([step.message.start, *headers, step.message.body]))
        )
        if step.kind != "request":  # what the exchange sends: its values are taken from it
            known |= placed
            secret = step.attrs.get("secret")
            assert secret is None or secret in known, f"line {step.line}: no {secret} yet"
            continue
        each = {step.each[0]} if step.each else set()
        assert placed - each <= known, f"line {step.line}: {sorted(placed - each - known)}"
        assert step.expected is not None
        answer = [v for _, v in step.expected.headers] + [step.expected.body]
        known |= set(PLACEHOLDER.findall("\n".join(answer))) | each


# --- the live run -----------------------------------------------------------------------


class Receiver:
    """The bank's (and the buyer's) webhook endpoint: records every POST, answers 204."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


# What the test knows before the first example: where the receiver listens.
PRESET = ("webhook_url", "buyer_webhook_url")


def _poll(what: str, attempt: Callable[[], None]) -> None:
    """Run `attempt` until it raises no Mismatch, for up to POLL_S seconds."""
    deadline = time.monotonic() + POLL_S
    while True:
        try:
            attempt()
            return
        except Mismatch as exc:
            if time.monotonic() > deadline:
                raise Mismatch(f"{what}: {exc}") from None
            time.sleep(0.2)


class Run:
    """One run of the walk-through against a live exchange."""

    def __init__(self, url: str, walk: Walkthrough, receiver: Receiver, mail: Path) -> None:
        self.url, self.walk, self.receiver, self.mail = url, walk, receiver, mail
        self.known: dict[str, Any] = {
            "webhook_url": receiver.url + "/ipx/bank",
            "buyer_webhook_url": receiver.url + "/ipx/buyer",
        }
        self.http = httpx.Client(base_url=url, timeout=30)
        self.used_mail: set[Path] = set()
        self.used_hooks: set[int] = set()
        namespace: dict[str, Any] = {}
        exec(compile(walk.code, str(DOC), "exec"), namespace)  # the document's own code
        self.verify: Callable[[str, str, str, bytes], bool] = namespace["verify"]

    def all(self) -> None:
        with self.http:
            for step in self.walk.steps:
                try:
                    getattr(self, step.kind)(step)
                except Mismatch as exc:
                    raise Mismatch(f"docs/integration.md line {step.line}: {exc}") from None

    def set(self, step: Step) -> None:
        self.known[step.attrs["name"]] = compute(step.attrs["expr"], self.known)

    def page_token(self, step: Step) -> None:
        """The account page: sign in, fill in the token form, read the secret shown."""
        a = step.attrs
        with httpx.Client(base_url=self.url, timeout=30) as web:
            web.get("/login")  # the CSRF cookie
            r = web.post(
                "/login",
                data={
                    "email": fill(a["email"], self.known),
                    "password": fill(a["password"], self.known),
                    "_csrf_token": web.cookies["ipx_csrf"],
                },
            )
            if r.status_code not in (302, 303):
                raise Mismatch(f"sign-in as {a['email']}: {r.status_code}")
            r = web.post(
                "/account/tokens",
                data={
                    "name": a.get("token", "first"),
                    "scopes": a["scopes"].split(),
                    "_csrf_token": web.cookies["ipx_csrf"],
                },
            )
        found = NEW_TOKEN.search(r.text)
        if r.status_code != 201 or found is None:
            raise Mismatch(f"the token form answered {r.status_code}")
        self.known[a["name"]] = found.group(1)

    def request(self, step: Step) -> None:
        assert step.message is not None and step.expected is not None
        values = step.each[1] if step.each else [None]
        before = dict(self.known)
        for value in values:
            if step.each:  # each round captures afresh; the last round's values stay
                self.known = {**before, step.each[0]: value}
            method, target = fill(step.message.start, self.known).split()[:2]
            headers = {k: fill(v, self.known) for k, v in step.message.headers}
            body = fill(step.message.body, self.known)
            if headers.get("Content-Type", "").startswith("multipart/"):
                body = body.replace("\n", "\r\n") + "\r\n"
            content = body.encode() if body else None
            send = partial(self.exchange, method, target, headers, content, step.expected)
            if method == "GET":  # idempotent: asked again until the worker has done its part
                _poll(f"{method} {target}", send)
            else:
                send()

    def exchange(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        content: bytes | None,
        expected: Message,
    ) -> None:
        response = self.http.request(method, target, headers=headers, content=content)
        check_answer(expected, response, self.known)

    def email(self, step: Step) -> None:
        assert step.message is not None
        documented = dict(step.message.headers)

        def attempt() -> None:
            for path in sorted(self.mail.glob("*.eml")):
                if path in self.used_mail:
                    continue
                msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                found = dict(self.known)
                try:
                    for name, value in documented.items():
                        got = str(msg[name])
                        if not _pattern(value, found).fullmatch(got):
                            raise Mismatch(f"{name}: {got!r}")
                    part = msg.get_body(("plain",))  # type: ignore[attr-defined]
                    expect_text(step.message.body, part.get_content(), found)
                except Mismatch:
                    continue
                self.used_mail.add(path)
                self.known.update(found)
                return
            raise Mismatch(f"no e-mail {documented}")

        _poll("e-mail", attempt)

    def webhook(self, step: Step) -> None:
        assert step.message is not None
        path = fill(step.message.start, self.known).split()[1]
        secret_name = step.attrs.get("secret")

        def attempt() -> None:
            with self.receiver.lock:
                received = list(enumerate(self.receiver.received))
            last = "nothing"
            for n, (got_path, headers, body) in received:
                if n in self.used_hooks or got_path != path:
                    continue
                found = dict(self.known)
                try:
                    expect_headers(step.message.headers, httpx.Headers(headers), found)  # type: ignore[union-attr]
                    expect_body(step.message.body, body, "application/json", found)  # type: ignore[union-attr]
                except Mismatch as exc:
                    last = str(exc)
                    continue
                if secret_name is not None:
                    h = httpx.Headers(headers)
                    signed = self.verify(
                        str(found[secret_name]),
                        h["X-IPX-Timestamp"],
                        h["X-IPX-Signature"],
                        body,
                    )
                    if not signed:
                        raise AssertionError(f"verify() refused the delivery {h}")
                self.used_hooks.add(n)
                self.known.update(found)
                return
            raise Mismatch(f"no webhook delivery to {path} matches ({last})")

        _poll("webhook", attempt)


SANDBOX = {"MARKET_MODE": "sandbox", "MARKET_WEBHOOK_PRIVATE_HOSTS": "true"}


@pytest.fixture
def exchange(settings: Any, pool: Any, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A sandbox exchange with the demo's operator: `market seed-demo`, then the web server
    and the worker in sandbox mode, the worker's e-mail caught into a folder; yields the
    server's URL and that folder."""
    run_market(settings, "seed-demo", env=SANDBOX)
    folder = tmp_path / "mail"
    with catching_mail(folder) as smtp_port:
        worker_env = {
            **SANDBOX,
            "MARKET_SMTP_HOST": "127.0.0.1",
            "MARKET_SMTP_PORT": str(smtp_port),
            # The links in e-mails name the exchange by the address the document uses.
            "MARKET_PUBLIC_URL": PUBLIC_URL,
        }
        with running_worker(settings, env=worker_env), running_server(settings, env=SANDBOX) as url:
            yield url, folder


def test_every_example_of_the_integration_walkthrough_works(
    exchange: tuple[str, Path],
) -> None:
    url, mail = exchange
    began = time.monotonic()
    with Receiver() as receiver:
        Run(url, parse(DOC.read_text(encoding="utf-8")), receiver, mail).all()
    assert time.monotonic() - began < 60
