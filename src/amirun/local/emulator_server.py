"""moto's server over HTTP, with the one SSM call it lacks that the steps make.

Processes outside this one (containers run by `sam local invoke`, commands run for
real) reach the emulator over HTTP. moto does not implement
`DescribeInstanceInformation`; here every instance EC2 reports running has an
SSM agent that is Online, and any other instance is not registered, which is
what a healthy instance with the SSM agent looks like on AWS.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: The header that names the operation of a JSON-protocol call (SSM).
_TARGET = "HTTP_X_AMZ_TARGET"
_DESCRIBE_INSTANCE_INFORMATION = "AmazonSSM.DescribeInstanceInformation"
#: The account moto answers for when the credentials name none.
ACCOUNT = "123456789012"

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _region(environ: dict[str, Any]) -> str:
    """The region in the request's SigV4 credential scope (`.../<date>/<region>/ssm/...`)."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    scope = authorization.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


def _running(instance_ids: list[str], region: str) -> list[str]:
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[ACCOUNT][region]
    running = []
    for instance_id in instance_ids:
        with contextlib.suppress(Exception):
            if backend.get_instance(instance_id).state == "running":
                running.append(instance_id)
    return running


def with_ssm_agents(app: App) -> App:
    """`app` answering DescribeInstanceInformation by the instances' EC2 state."""

    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get(_TARGET) != _DESCRIBE_INSTANCE_INFORMATION:
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        wanted = [
            value
            for item in request.get("Filters", request.get("InstanceInformationFilterList", []))
            if item.get("Key", item.get("key")) == "InstanceIds"
            for value in item.get("Values", item.get("valueSet", []))
        ]
        online = _running(wanted, _region(environ))
        body = json.dumps(
            {
                "InstanceInformationList": [
                    {"InstanceId": i, "PingStatus": "Online", "PlatformType": "Linux"}
                    for i in online
                ]
            }
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return wrapped


@contextlib.contextmanager
def emulator_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """moto's server on `host:port` (0: any free port) for as long as the block runs.

    Yields its endpoint URL (`http://127.0.0.1:<port>`).
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = with_ssm_agents(DomainDispatcherApplication(create_backend_app))
    with contextlib.redirect_stdout(io.StringIO()):
        server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted: `python -m amirun.local.emulator_server --host 172.17.0.1`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m amirun.local.emulator_server")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5000, help="port (0: any free one)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt), emulator_server(args.host, args.port) as url:
        print(f"emulator on {url} (Ctrl-C stops it)", flush=True)
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
