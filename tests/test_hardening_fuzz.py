"""Property-based fuzzing (issue 11): whatever a client sends, the workflow parser and
validator answer with problems, never an exception, and the server answers 4xx (never
500), logs nothing as unhandled, and keeps answering.

Bounded in time: a fixed number of derandomized examples (reproducible in CI). Set
FUZZ_RANDOM=1 and FUZZ_EXAMPLES=5000 for a longer, random exploration."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.workflow import WorkflowFormatError, parse_workflow
from service.budgets import check_budgets, check_node_count
from service.clients import HEADER
from service.config import Budgets
from service.state import SERVICES
from tests.hardening_kit import nested, png_with_workflow
from tests.server_testkit import NODES, make_config, make_engine, make_test_app, txt2img

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NODE_TYPES = [n.__name__ for n in NODES]
ISSUED = "<issued>"
INPUT_NAMES = ["name", "model", "text", "width", "height", "batch_size", "seed", "steps", "delay"]

# -- strategies ---------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**60, max_value=10**5100),  # from long to over Python's limit
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
deep_values = st.integers(min_value=0, max_value=400).map(nested)
links = st.builds(
    lambda node, output: {"node": node, "output": output},
    st.sampled_from(["load", "enc", "lat", "sample", "save", "nowhere"]),
    st.sampled_from(["model", "cond", "latent", "value", "x"]),
)
input_values = st.one_of(json_values, links, deep_values)


@st.composite
def workflows(draw: st.DrawFn) -> Any:
    """Mostly well-formed documents with odd values, some mutated txt2img graphs, some junk."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.one_of(json_values, deep_values))
    if kind == 1:
        doc = txt2img()
        node = draw(st.sampled_from(sorted(doc["nodes"])))
        doc["nodes"][node]["inputs"][draw(st.sampled_from(INPUT_NAMES))] = draw(input_values)
        if draw(st.booleans()):
            doc["ui"] = draw(st.one_of(json_values, deep_values))
        return doc
    nodes = draw(
        st.dictionaries(
            st.text(max_size=6),
            st.fixed_dictionaries(
                {
                    "type": st.one_of(st.sampled_from(NODE_TYPES), st.text(max_size=6)),
                    "inputs": st.dictionaries(
                        st.sampled_from(INPUT_NAMES), input_values, max_size=4
                    ),
                }
            ),
            max_size=5,
        )
    )
    doc: dict[str, Any] = {"version": draw(st.sampled_from([1, 1, 2, "1"])), "nodes": nodes}
    if kind == 3:
        doc["ui"] = draw(st.one_of(json_values, deep_values))
    return doc


def _dumps(value: Any) -> str:
    """JSON text of a generated value; integers beyond Python's str() limit written digit
    by digit (a client in any other language would send them)."""
    try:
        return json.dumps(value)
    except ValueError:
        pass
    huge: dict[str, str] = {}

    def swap(v: Any) -> Any:
        if type(v) is int and abs(v) > 10**4000:
            key = uuid.uuid4().hex
            huge[key] = ("-" if v < 0 else "") + "9" * 4400
            return key
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    try:
        text = json.dumps(swap(value))
    except (ValueError, RecursionError):
        return "[" * 5000
    for key, digits in huge.items():
        text = text.replace(f'"{key}"', digits)
    return text


# -- the parser and validator --------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    return make_engine(make_config(tmp_path_factory.mktemp("fuzz-engine")))


@FUZZ
@given(doc=workflows())
def test_parser_and_validator_answer_with_problems_never_exceptions(engine, doc):
    try:
        workflow = parse_workflow(doc)
    except WorkflowFormatError:
        return
    json.dumps(workflow.model_dump(mode="json"))  # what is accepted can be stored
    if check_node_count(workflow, Budgets()):
        return
    checked = engine.check(workflow)
    for problem in checked.problems:
        assert problem.code and problem.message
    if not checked.problems:
        check_budgets(checked, Budgets(), engine.workspace)


# -- the HTTP handlers ---------------------------------------------------------------


class ServerThread:
    """The app on its own event loop in a thread, so plain blocking clients can probe it."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self._await(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self._await(site.start())
        self.port = self.runner.addresses[0][1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._await(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def _await(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def request(
        self, method: str, target: str, body: bytes | None = None, headers: dict | None = None
    ) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()


class ErrorRecords(logging.Handler):
    """Every ERROR record of any thread (the server logs unhandled errors at ERROR)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, list]]:
    tmp = tmp_path_factory.mktemp("fuzz-server")
    (tmp / "dist").mkdir()
    (tmp / "dist" / "index.html").write_text("<!doctype html><title>canvas</title>")
    config = make_config(tmp, max_upload_bytes=1 << 20)  # a built canvas: / is served
    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    try:
        app = make_test_app(config)
        with ServerThread(app) as srv:
            srv.client_id = app[SERVICES].clients.issue()
            yield srv, errors.records
    finally:
        logging.getLogger().removeHandler(errors)


segments = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="a./\\%:\x00", max_size=12),
    st.integers(min_value=0, max_value=300).map(lambda n: "a" * n),
    st.sampled_from(["..", "../..", "x.png", "test..png", "%2e%2e", "0", "9" * 40]),
)
queries = st.dictionaries(
    st.sampled_from(["limit", "before", "status", "client_id", "store", "token"]),
    st.one_of(st.text(max_size=25), st.integers().map(str), st.just("9" * 5000)),
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes | None, dict[str, str]]:
    seg = quote(draw(segments), safe="/")
    route = draw(st.integers(0, 6))
    query = draw(queries)
    qs = ("?" + urlencode(query)) if query else ""
    headers: dict[str, str] = {}
    who = draw(st.sampled_from([None, ISSUED, ISSUED, "not-an-issued-id"]))
    if who is not None:
        headers[HEADER] = who  # ISSUED is replaced by an id the server issued
    body: bytes | None = None
    if route == 0:
        method = "POST"
        target = "/api/jobs"
        envelope = draw(
            st.one_of(
                st.builds(lambda w: {"workflow": w}, workflows()),
                st.builds(
                    lambda w, c, k: {"workflow": w, "client_id": c, "idempotency_key": k},
                    workflows(),
                    json_values,
                    json_values,
                ),
                json_values,
            )
        )
        text = _dumps(envelope)
        if draw(st.booleans()):
            text = text[: draw(st.integers(0, len(text)))]  # truncated
        body = text.encode("utf-8", "surrogatepass")
        headers["Content-Type"] = "application/json"
    elif route == 1:
        method = draw(st.sampled_from(["GET", "DELETE"]))
        target = f"/api/jobs/{seg}"
    elif route == 2:
        method = "GET"
        target = f"/api/files/{draw(st.sampled_from(['output', 'input', 'temp', 'x']))}/{seg}"
    elif route == 3:
        method = "GET"
        target = f"/api/workflows/{seg}"
    elif route == 4:
        method = "POST"
        target = "/api/files/input"
        payload = draw(
            st.one_of(
                st.binary(max_size=200),
                workflows().map(lambda w: png_with_workflow(_dumps(w))),
                st.text(max_size=200).map(lambda t: png_with_workflow(t)),
            )
        )
        boundary = "fuzzboundary"
        field = draw(st.sampled_from(["file", "other"]))
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode() + payload
        if draw(st.booleans()):
            body += f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = draw(
            st.sampled_from(
                [
                    f"multipart/form-data; boundary={boundary}",
                    "multipart/form-data",
                    "multipart/mixed; boundary=x",
                    "image/png",
                ]
            )
        )
    elif route == 5:
        method = "GET"
        target = "/api/jobs"
    else:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
        target = draw(st.sampled_from(["/api/status", "/api/nodes", "/api/models", "/"])) + seg
    return method, target + qs, body, headers


@FUZZ
@given(req=requests())
def test_http_handlers_never_answer_500(server, req):
    srv, errors = server
    method, target, body, headers = req
    if headers.get(HEADER) == ISSUED:
        headers = {**headers, HEADER: srv.client_id}
    status = srv.request(method, target, body, headers)
    assert status < 500, (method, target[:200], status)
    assert not errors, [r.getMessage()[:300] for r in errors]
    assert srv.request("GET", "/api/status") == 200
