"""A Lambda Invoke endpoint on 127.0.0.1 that runs the project's real handlers in-process.

The emulator's state machine executor calls Lambda through boto3; with
`AWS_ENDPOINT_URL_LAMBDA` pointing here, each Task runs the handler named in
`template.yaml`, with that function's environment, and errors come back the
way Lambda reports them (`X-Amz-Function-Error` and an errorType payload), so
Retry and Catch match the same names as on AWS.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from amirun.project import FunctionSpec

INVOKE_PATH = "/2015-03-31/functions/"
Handler = Callable[[Any, Any], Any]
#: Lambda's default concurrency limit per account and region.
LAMBDA_CONCURRENCY = 1000


@dataclass
class LambdaContext:
    """What the Lambda runtime hands a handler, as much as Powertools reads."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_s: float = 30.0
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


@dataclass(frozen=True)
class Invocation:
    """One call of a handler, reported to whoever follows the run."""

    function: str
    event: Any
    result: Any = None
    error: str | None = None
    message: str | None = None


def load_handler(spec: FunctionSpec) -> Handler:
    """Import a function's handler from its file, as the Lambda runtime would."""
    module_name = f"amirun_function_{spec.logical_id}"
    loader_spec = importlib.util.spec_from_file_location(module_name, spec.module_file)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot load {spec.module_file}")
    module: ModuleType = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    handler: Handler = getattr(module, spec.function_name)
    return handler


def service_exception() -> dict[str, Any]:
    return {
        "errorType": "Lambda.ServiceException",
        "errorMessage": "Lambda failed after the function ran; its response was lost "
        "(rehearsal fault)",
    }


def too_many_requests(limit: int) -> dict[str, Any]:
    return {
        "errorType": "Lambda.TooManyRequestsException",
        "errorMessage": f"Rate Exceeded: {limit} invocations already running "
        "(the endpoint's concurrency limit)",
    }


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of Task states calling at once
    # would have connections refused and retried a second later.
    request_queue_size = 1024


class LambdaEndpoint:
    """Serves Invoke for the given functions, keyed by the name in their ARN.

    At most `concurrency` invocations run at once, as under a Lambda account's
    concurrency limit; one more is refused as Lambda refuses it (throttled).
    """

    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        arn_of: dict[str, str],
        on_invoke: Callable[[Invocation], None] | None = None,
        lose_first_response_of: frozenset[str] = frozenset(),
        concurrency: int = LAMBDA_CONCURRENCY,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._specs = {arn_of[logical_id]: spec for logical_id, spec in functions.items()}
        self._specs.update({spec.logical_id: spec for spec in functions.values()})
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._on_invoke = on_invoke
        self._arn_of = arn_of
        # Functions whose first successful response is lost on its way back, as when
        # Lambda fails after the handler ran: the state machine retries the Task.
        self._to_lose = set(lose_first_response_of)
        self.concurrency = concurrency
        self._running = 0
        #: Most invocations that ran at once, how many were refused for the limit, and
        #: the longest one (seconds): under load, the emulator shares the CPU among them.
        self.peak_concurrency = 0
        self.throttled = 0
        self.longest_s = 0.0
        self._server = _Server(("127.0.0.1", 0), self._request_handler())
        # Shutting down waits for the server's next look at its flag: look often.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LambdaEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_for(self, spec: FunctionSpec) -> Handler:
        # Cold start on first use, then warm, like a Lambda execution environment.
        with self._lock:
            if spec.logical_id not in self._handlers:
                self._handlers[spec.logical_id] = load_handler(spec)
            return self._handlers[spec.logical_id]

    def lose_response(self, name: str) -> bool:
        """True (once per function listed) when this response is to be lost."""
        spec = self._specs[name]
        with self._lock:
            if spec.logical_id in self._to_lose:
                self._to_lose.discard(spec.logical_id)
                return True
        return False

    def serves(self, name: str) -> bool:
        """True when `name` (a function's ARN or logical id) is one of this endpoint's."""
        return name in self._specs

    def invoke(self, name: str, event: Any) -> tuple[Any, bool]:
        """Run one invocation; returns (payload, failed)."""
        spec = self._specs.get(name)
        if spec is None:
            raise KeyError(name)
        with self._lock:
            admitted = self._running < self.concurrency
            if admitted:
                self._running += 1
                self.peak_concurrency = max(self.peak_concurrency, self._running)
            else:
                self.throttled += 1
        if not admitted:
            # AWS answers HTTP 429, which Step Functions names Lambda.TooManyRequestsException;
            # moto would name it "Exception", so it travels as a function error (see below).
            refused = too_many_requests(self.concurrency)
            self._report(
                Invocation(
                    spec.logical_id, event, None, refused["errorType"], refused["errorMessage"]
                )
            )
            return refused, True
        started = time.monotonic()
        try:
            return self._run(spec, name, event)
        finally:
            with self._lock:
                self._running -= 1
                self.longest_s = max(self.longest_s, time.monotonic() - started)

    def _run(self, spec: FunctionSpec, name: str, event: Any) -> tuple[Any, bool]:
        context = LambdaContext(
            function_name=spec.logical_id, invoked_function_arn=self._arn_of[spec.logical_id]
        )
        try:
            result = self._handler_for(spec)(event, context)
        except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda would
            payload = error_payload(exc, context.aws_request_id)
            self._report(Invocation(spec.logical_id, event, None, type(exc).__name__, str(exc)))
            return payload, True
        if self.lose_response(name):
            # AWS reports this as the error Lambda.ServiceException. moto names any
            # HTTP error of a Lambda task "Exception", but passes a function error's
            # errorType through: so the name arrives as on AWS.
            lost = service_exception()
            self._report(
                Invocation(spec.logical_id, event, None, lost["errorType"], lost["errorMessage"])
            )
            return lost, True
        self._report(Invocation(spec.logical_id, event, result))
        return result, False

    def _report(self, invocation: Invocation) -> None:
        if self._on_invoke is not None:
            self._on_invoke(invocation)

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class _Invoke(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if not self.path.startswith(INVOKE_PATH) or not self.path.endswith("/invocations"):
                    self._reply(404, {"message": f"no route for {self.path}"})
                    return
                name = unquote(self.path[len(INVOKE_PATH) : -len("/invocations")])
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b"{}"
                try:
                    event = json.loads(body or b"{}")
                    payload, failed = endpoint.invoke(name, event)
                except KeyError:
                    self._reply(
                        404,
                        {"Type": "User", "message": f"Function not found: {name}"},
                        {"x-amzn-ErrorType": "ResourceNotFoundException"},
                    )
                    return
                headers = {"X-Amz-Executed-Version": "$LATEST"}
                if failed:
                    headers["X-Amz-Function-Error"] = "Unhandled"
                self._reply(200, payload, headers)

            def _reply(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the runner reports invocations itself."""

        return _Invoke
