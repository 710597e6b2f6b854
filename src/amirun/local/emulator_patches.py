"""Where the embedded emulator departs from AWS, or spends a night's time for nothing.

Each patch here changes how moto does a thing, never what a caller is told, except
where moto answers differently from AWS; then it answers as AWS does, and says so.
They are entered by `EmulatorSession` for as long as the emulator lives.

A night of 1,238 runs is what they were measured against (`bench/day.py`): moto's
costs that grow with the night (every command sent to every instance, every tag
scanned for each instance) make it quadratic; its costs per request (a lock and a
comparison of backends per lookup, the response class's methods listed again, a
service model loaded by every thread that arrives before the first finished, an
HTTP round trip and a thread per Lambda task) make each run slower than it is.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import botocore.session

from amirun.local.lambda_endpoint import LambdaEndpoint

#: The services a night calls on the emulator: their models are loaded before any run.
NIGHT_SERVICES = (
    "ec2",
    "ssm",
    "s3",
    "dynamodb",
    "stepfunctions",
    "cloudwatch",
    "scheduler",
    "sqs",
    "sns",
    "iam",
    "cloudformation",
    "sts",
)


@contextlib.contextmanager
def commands_sent_to_the_named_instances() -> Iterator[None]:
    """A SendCommand naming instances by id runs on those instances only.

    moto adds the instances its `Targets` select, and with no targets it selects every
    instance of the account: each command would then be sent to every instance the
    night has launched, and ListCommands by instance would list every command. On AWS,
    `InstanceIds` and `Targets` are alternatives; the workflow names its one instance.
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
    """
    from moto.ssm.models import Command

    original = Command._get_instance_ids_from_targets

    def from_targets(command: Any) -> list[str]:
        return original(command) if command.targets else []

    with mock.patch.object(Command, "_get_instance_ids_from_targets", from_targets):
        yield


@contextlib.contextmanager
def tags_read_directly() -> Iterator[None]:
    """moto's tag lookups, answered from the tag table by resource id (same results)."""
    from moto.ec2 import utils as ec2_utils
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(resource: Any) -> list[dict[str, str]]:
        ident = getattr(resource, "id", None)
        if not ident:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(ident), "")
        tags = resource.ec2_backend.tags.get(ident, {})
        return [
            {"resource_id": ident, "key": key, "value": value, "resource_type": kind}
            for key, value in list(tags.items())
        ]

    pattern = functools.lru_cache(maxsize=4096)(ec2_utils.simple_aws_filter_to_re)
    with (
        mock.patch.object(TaggedEC2Resource, "get_tags", get_tags),
        mock.patch.object(ec2_utils, "simple_aws_filter_to_re", pattern),
    ):
        yield


class _InstanceIndex:
    """Each instance of an EC2 backend by id, with its reservation.

    Rebuilt when the backend's reservations change in number or an id is not where the
    index says (moto only adds and removes whole reservations); kept on the backend, so a
    reset backend starts without one.
    """

    def __init__(self) -> None:
        self.count = -1
        self.reservations: dict[str, Any] = {}
        self.by_id: dict[str, tuple[Any, Any]] = {}

    @staticmethod
    def of(backend: Any) -> _InstanceIndex:
        index: _InstanceIndex | None = vars(backend).get("_instances_by_id")
        if index is None:
            index = vars(backend)["_instances_by_id"] = _InstanceIndex()
        return index

    def _rebuild(self, backend: Any) -> None:
        reservations = backend.reservations
        by_id = {}
        for reservation in list(reservations.values()):
            for instance in reservation.instances:
                by_id[instance.id] = (reservation, instance)
        self.reservations, self.count, self.by_id = reservations, len(reservations), by_id

    def _current(self, backend: Any, found: tuple[Any, Any]) -> bool:
        reservation, instance = found
        return (
            backend.reservations.get(reservation.id) is reservation
            and instance in reservation.instances
        )

    def find(self, backend: Any, instance_id: str) -> tuple[Any, Any] | None:
        reservations = backend.reservations
        if reservations is not self.reservations or len(reservations) != self.count:
            self._rebuild(backend)
        found = self.by_id.get(instance_id)
        if found is None or not self._current(backend, found):
            self._rebuild(backend)
            found = self.by_id.get(instance_id)
        return found


@contextlib.contextmanager
def instances_found_without_copies() -> Iterator[None]:
    """moto finds an instance by id in a copy of every reservation of the account,
    made again for each lookup: a night's DescribeInstances, readiness looks and stops
    would copy over a thousand reservations each. Found through an index by id into the
    reservations themselves (the same instances, the same errors); only the reservations
    answered are copies, as moto makes them, since the answer narrows their instances."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.utils import filter_reservations

    lock = threading.Lock()

    def find(backend: Any, instance_id: str) -> tuple[Any, Any] | None:
        with lock:
            return _InstanceIndex.of(backend).find(backend, instance_id)

    def every_instance(backend: Any) -> Iterator[Any]:
        for reservation in list(backend.reservations.values()):
            yield from reservation.instances

    def get_instance(backend: Any, instance_id: str) -> Any:
        instance = get_instance_by_id(backend, instance_id)
        if instance is None:
            raise InvalidInstanceIdError(instance_id)
        return instance

    def get_instance_by_id(backend: Any, instance_id: str) -> Any:
        found = find(backend, instance_id)
        return found[1] if found else None

    def all_instances(backend: Any, filters: Any = None) -> list[Any]:
        return [i for i in every_instance(backend) if i.applies(filters)]

    def get_multi_instances_by_id(
        backend: Any, instance_ids: list[str], filters: Any = None
    ) -> list[Any]:
        found = {i: find(backend, i) for i in instance_ids}
        missing = [i for i, f in found.items() if f is None]
        if missing:
            raise InvalidInstanceIdError(missing)
        instances = [f[1] for f in found.values() if f is not None]
        return [i for i in instances if i.applies(filters)]

    def get_reservations_by_instance_ids(
        backend: Any, instance_ids: list[str], filters: Any = None
    ) -> list[Any]:
        named: dict[str, tuple[Any, list[Any]]] = {}
        for instance_id in dict.fromkeys(instance_ids):
            found = find(backend, instance_id)
            if found is None:
                raise InvalidInstanceIdError(instance_id)
            reservation, instance = found
            named.setdefault(reservation.id, (reservation, []))[1].append(instance)
        reservations = []
        chosen = list(named.values())
        if len(chosen) > 1:  # in the account's order of reservations, as moto answers
            order = {ident: n for n, ident in enumerate(backend.reservations)}
            chosen.sort(key=lambda r: order[r[0].id])
        for reservation, instances in chosen:
            answered = copy.copy(reservation)
            answered.instances = [i for i in reservation.instances if i in instances]
            reservations.append(answered)
        if filters is not None:
            reservations = filter_reservations(reservations, filters)
        return reservations

    with contextlib.ExitStack() as patches:
        for method in (
            get_instance,
            get_instance_by_id,
            all_instances,
            get_multi_instances_by_id,
            get_reservations_by_instance_ids,
        ):
            patches.enter_context(mock.patch.object(InstanceBackend, method.__name__, method))
        yield


@contextlib.contextmanager
def backends_found_directly() -> Iterator[None]:
    """An account's backends, found without moto's global lock once they exist.

    moto takes one lock for every lookup of an account's backends, and under it lists
    the account ids and compares the service's backends with every other service's:
    every request of every thread queues there. An account's backends, once created,
    are never replaced while the emulator lives; only the first lookup creates them.
    """
    from moto.core.base_backend import BackendDict

    original = BackendDict.__getitem__

    def getitem(backends: Any, account_id: str) -> Any:
        try:
            return dict.__getitem__(backends, account_id)
        except KeyError:
            return original(backends, account_id)

    with mock.patch.object(BackendDict, "__getitem__", getitem):
        yield


@contextlib.contextmanager
def response_methods_listed_once() -> Iterator[None]:
    """moto lists a response class's methods (`inspect.getmembers`) on every request
    to find the action's; a class's methods do not change while the emulator runs."""
    from moto.core.utils import method_names_from_class

    listed = functools.cache(method_names_from_class)
    with mock.patch("moto.core.responses.method_names_from_class", listed):
        yield


#: The values a JSON document is made of that need no copy.
_JSON_ATOMS = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value, much cheaper than `copy.deepcopy`; anything else
    inside it (a datetime in an event's details, say) is deep-copied as before."""
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind in _JSON_ATOMS:
        return value
    return copy.deepcopy(value)


class _CopyWithJsonCopies:
    """The `copy` module as moto's interpreter sees it: `deepcopy` is `json_copy`."""

    deepcopy = staticmethod(json_copy)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


@contextlib.contextmanager
def states_copied_as_json() -> Iterator[None]:
    """The interpreter deep-copies the state's input for every path it reads (over a
    hundred times a run, each time the whole request); the state is JSON, and copied
    as JSON: the same values, a fraction of the time. JSON holds no shared or
    circular parts, the one thing `deepcopy` does more."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.common.string import string_expression
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.eval import environment, states
    from moto.stepfunctions.parser.asl.eval.event import event_manager

    shim = _CopyWithJsonCopies()
    with contextlib.ExitStack() as patches:
        for module in (
            states,
            string_expression,
            result_path,
            execute_state,
            event_manager,
            environment,
        ):
            patches.enter_context(mock.patch.object(module, "copy", shim))
        yield


@contextlib.contextmanager
def response_keys_found_once() -> Iterator[None]:
    """moto's serializer finds each member of an answer (an EC2 instance has about 150)
    by trying aliases of its name, built anew for every member of every answer. The
    aliases depend only on the object's class, the member's name and its shape (and the
    structure it is read in): found once for each."""
    from moto.core.serialize import XFormedAttributePicker

    original = XFormedAttributePicker.get_possible_keys
    found: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def get_possible_keys(picker: Any, context: Any) -> Iterator[str]:
        obj, shape = context.obj, context.shape
        if "Meta" in getattr(obj, "__dict__", ()):
            return original(picker, context)  # aliases of this object's own
        key = (
            type(obj),
            context.key,
            shape,
            getattr(shape, "parent", None),
            tuple(picker.alias_providers),
        )
        keys = found.get(key)
        if keys is None:
            keys = found[key] = tuple(original(picker, context))
        return iter(keys)

    with mock.patch.object(XFormedAttributePicker, "get_possible_keys", get_possible_keys):
        yield


class _Narrowed:
    """A CloudWatch backend whose datapoints are only those a query can match."""

    def __init__(self, backend: Any, datapoints: list[Any]) -> None:
        self._backend, self._datapoints = backend, datapoints

    def get_all_metrics(self) -> list[Any]:
        return self._datapoints

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@contextlib.contextmanager
def metric_statistics_indexed() -> Iterator[None]:
    """GetMetricStatistics, from the datapoints of the metric and dimension asked for.

    moto walks every datapoint of the account for each query: a night's utilisation
    looks (two per run, each over every instance's datapoints) would grow with the
    square of the runs. Datapoints are indexed by namespace, name and each dimension
    as they arrive; the query then runs as moto runs it, over those alone.
    """
    from moto.cloudwatch.models import CloudWatchBackend

    original = CloudWatchBackend.get_metric_statistics
    lock = threading.Lock()

    def datapoints(backend: Any, namespace: str, name: str, dimension: Any) -> list[Any]:
        data = backend.metric_data
        with lock:
            # Kept on the backend: a reset backend starts with no datapoints and no index.
            listed, seen, index = vars(backend).get("_indexed_datapoints", (None, 0, {}))
            if listed is not data or seen > len(data):
                seen, index = 0, {}
            for datum in data[seen:]:
                index.setdefault((datum.namespace, datum.name, None, None), []).append(datum)
                for dim in datum.dimensions:
                    key = (datum.namespace, datum.name, dim.name, dim.value)
                    index.setdefault(key, []).append(datum)
            vars(backend)["_indexed_datapoints"] = (data, len(data), index)
            wanted = (namespace, name, *(dimension or (None, None)))
            return [*index.get(wanted, []), *backend.aws_metric_data]

    signature = inspect.signature(original)

    def get_metric_statistics(backend: Any, *args: Any, **kwargs: Any) -> Any:
        asked = signature.bind(backend, *args, **kwargs).arguments
        # A dimension asked for without a value matches any value: no narrowing by it.
        exact = [(d["Name"], d["Value"]) for d in asked.get("dimensions") or [] if d.get("Value")]
        found = datapoints(
            backend, asked["namespace"], asked["metric_name"], exact[0] if exact else None
        )
        narrowed: Any = _Narrowed(backend, found)
        return original(narrowed, *args, **kwargs)

    with mock.patch.object(CloudWatchBackend, "get_metric_statistics", get_metric_statistics):
        yield


def service_models_loaded(services: tuple[str, ...] = NIGHT_SERVICES) -> None:
    """Load the models moto answers with before the first burst of requests.

    Its cache keeps the first model loaded, but every thread that asks before that one
    is done loads the whole model again: a night starts two hundred runs at once.
    """
    from moto.core.utils import get_service_model

    for service in services:
        get_service_model(service)


@contextlib.contextmanager
def definitions_parsed_once() -> Iterator[None]:
    """The executor parses the whole ASL again for each execution, and builds a new
    JSONPath parser (its grammar tables) for each path it reads: each is parsed once.

    A parsed program holds no execution's state (the environment does), and a parsed
    path is only read; the workflow has no Map or Parallel state, whose parts keep some.
    """
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import json_path

    parse_program = functools.lru_cache(maxsize=16)(AmazonStateLanguageParser.parse)
    parse_path = functools.lru_cache(maxsize=4096)(vars(json_path)["parse"])
    with (
        mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(parse_program)),
        mock.patch.object(json_path, "parse", parse_path),
    ):
        yield


def _serialized(
    method: Callable[..., Any], lock: contextlib.AbstractContextManager[Any]
) -> Callable[..., Any]:
    @functools.wraps(method)
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return serialized


@contextlib.contextmanager
def instance_profiles_one_at_a_time() -> Iterator[None]:
    """moto's instance profile associations are a dict that a launch adds to while a
    termination walks it (RuntimeError under load): one change at a time, as on AWS."""
    from moto.ec2.models.iam_instance_profile import IamInstanceProfileAssociationBackend

    lock = threading.RLock()
    with contextlib.ExitStack() as patches:
        for name in (
            "associate_iam_instance_profile",
            "describe_iam_instance_profile_associations",
            "disassociate_iam_instance_profile",
            "replace_iam_instance_profile_association",
        ):
            method = getattr(IamInstanceProfileAssociationBackend, name)
            patches.enter_context(
                mock.patch.object(
                    IamInstanceProfileAssociationBackend, name, _serialized(method, lock)
                )
            )
        yield


@contextlib.contextmanager
def lambda_tasks_in_process(endpoint: LambdaEndpoint) -> Iterator[None]:
    """The state machine's Lambda tasks call the local endpoint's handlers directly.

    Over HTTP each task costs a boto3 request, a connection and a server thread; the
    handler, the event and the answer are the same. The event and the answer still
    travel as JSON, as they do to and from Lambda: the handler gets its own copy, and
    an answer JSON cannot carry fails as Lambda fails it (Runtime.MarshalError).
    A function the endpoint does not serve goes the HTTP way, to be refused there.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )

    over_http = lambda_eval_utils._invoke_lambda_function

    def invoke_lambda_function(
        parameters: dict[str, Any], region: str, state_credentials: Any
    ) -> Any:
        name = parameters.get("FunctionName", "")
        if not endpoint.serves(name):
            return over_http(parameters, region, state_credentials)
        answer, failed = endpoint.invoke(name, json.loads(parameters.get("Payload") or b"{}"))
        try:
            body = json.dumps(answer)
        except (TypeError, ValueError) as exc:
            failed, body = (
                True,
                json.dumps(
                    {
                        "errorType": "Runtime.MarshalError",
                        "errorMessage": f"Unable to marshal response: {exc}",
                    }
                ),
            )
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": json.loads(body),
        }
        if failed:
            response["FunctionError"] = "Unhandled"
        return response

    with mock.patch.object(lambda_eval_utils, "_invoke_lambda_function", invoke_lambda_function):
        yield


def regions_from(session: Any) -> Callable[..., list[str]]:
    """`Session.get_available_regions`, answered by one session, each answer once.

    The answer depends only on botocore's bundled models, the same for every session.
    """
    original = botocore.session.Session.get_available_regions

    @functools.cache
    def regions(service_name: str, partition_name: str, allow_non_regional: bool) -> list[str]:
        return list(original(session, service_name, partition_name, allow_non_regional))

    def get_available_regions(
        _: Any, service_name: str, partition_name: str = "aws", allow_non_regional: bool = False
    ) -> list[str]:
        return list(regions(service_name, partition_name, allow_non_regional))

    return get_available_regions


def one_client_per_service(create: Callable[..., Any]) -> Callable[..., Any]:
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's clients ignore the credentials (the emulator accepts any): same client.
        with lock:
            if (region, service) not in clients:
                clients[region, service] = create(region, service, state_credentials)
            return clients[region, service]

    return client_for
