"""python-gearman 2.0.2's public names (ANCHORS.md 2.1-2.8) that we implement.

Each name must exist where python-gearman put it, keep its signature (a
drop-in is called positionally by old code) and carry a docstring.  The
behaviour behind every name is exercised against gearmand in the other
``test_binding_*`` files.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any

import pytest

import gearman
from gearman import admin_client, client, connection_manager, constants, errors, job, worker

MODULES = ["client", "worker", "admin_client", "job", "constants", "errors", "connection_manager"]

#: (owner, name) pairs: python-gearman's names plus the [master] ones we provide.
CALLABLES: list[tuple[Any, str]] = [
    (gearman, "GearmanClient"),
    (gearman, "GearmanWorker"),
    (gearman, "GearmanAdminClient"),
    (gearman, "DataEncoder"),
    (gearman, "GearmanJob"),
    (gearman, "GearmanJobRequest"),
    (connection_manager, "DataEncoder"),
    (connection_manager, "NoopEncoder"),
    (connection_manager, "GearmanConnectionManager"),
    (connection_manager.DataEncoder, "encode"),
    (connection_manager.DataEncoder, "decode"),
    (connection_manager.GearmanConnectionManager, "shutdown"),
    *[
        (client.GearmanClient, name)
        for name in (
            "submit_job",
            "submit_multiple_jobs",
            "submit_multiple_requests",
            "wait_until_jobs_accepted",
            "wait_until_jobs_completed",
            "wait_until_any_job_completed",
            "get_job_status",
            "get_job_statuses",
            "wait_until_job_statuses_received",
            "get_status_by_handle",
            "get_status_by_unique",
            "send_job_request",
            "_create_request_from_dictionary",
            "shutdown",
        )
    ],
    *[
        (worker.GearmanWorker, name)
        for name in (
            "register_task",
            "unregister_task",
            "set_client_id",
            "work",
            "shutdown",
            "establish_worker_connections",
            "after_poll",
            "after_job",
            "has_job_lock",
            "send_job_status",
            "send_job_complete",
            "send_job_failure",
            "send_job_exception",
            "send_job_data",
            "send_job_warning",
            "on_job_execute",
            "on_job_exception",
            "on_job_complete",
        )
    ],
    *[
        (admin_client.GearmanAdminClient, name)
        for name in (
            "ping_server",
            "send_maxqueue",
            "send_shutdown",
            "get_status",
            "get_version",
            "get_workers",
            "get_pid",
            "cancel_job",
            "get_jobs",
            "get_unique_jobs",
            "get_priority_status",
            "get_verbose",
            "create_function",
            "drop_function",
            "shutdown",
        )
    ],
    (job.GearmanJob, "to_dict"),
    *[
        (job.GearmanJobRequest, name)
        for name in (
            "initialize_request",
            "reset",
            "job",
            "complete",
            "priority",
            "connection_attempts",
            "max_connection_attempts",
            "server_status",
        )
    ],
    *[(errors, name) for name in errors.__all__],
]


@pytest.mark.parametrize("name", MODULES)
def test_submodule_paths(name: str) -> None:
    module = importlib.import_module(f"gearman.{name}")
    assert getattr(gearman, name) is module
    assert inspect.getdoc(module)


@pytest.mark.parametrize(
    ("owner", "name"), CALLABLES, ids=[f"{getattr(o, '__name__', o)}.{n}" for o, n in CALLABLES]
)
def test_name_exists_and_has_a_docstring(owner: Any, name: str) -> None:
    obj = inspect.getattr_static(owner, name)
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    doc = obj.__doc__ if isinstance(obj, property) else inspect.getdoc(getattr(owner, name))
    assert (doc or "").strip(), f"{name} has no docstring"


def test_package_level_names() -> None:
    assert gearman.__version__ == "2.0.2"
    assert gearman.GearmanClient is client.GearmanClient
    assert gearman.GearmanWorker is worker.GearmanWorker
    assert gearman.GearmanAdminClient is admin_client.GearmanAdminClient
    assert gearman.DataEncoder is connection_manager.DataEncoder
    assert issubclass(gearman.NullHandler, logging.Handler)
    assert gearman.gearman_root_logger is logging.getLogger("gearman")
    assert any(isinstance(h, gearman.NullHandler) for h in gearman.gearman_root_logger.handlers)
    for state in ("UNKNOWN", "PENDING", "CREATED", "FAILED", "COMPLETE"):
        assert getattr(gearman, f"JOB_{state}") == getattr(constants, f"JOB_{state}") == state
    assert (gearman.PRIORITY_NONE, gearman.PRIORITY_LOW, gearman.PRIORITY_HIGH) == (
        None,
        "LOW",
        "HIGH",
    )


def test_constants_module() -> None:
    assert constants._DEBUG_MODE_ is False
    assert constants.DEFAULT_GEARMAN_PORT == 4730
    assert (constants.PRIORITY_NONE, constants.PRIORITY_LOW, constants.PRIORITY_HIGH) == (
        None,
        "LOW",
        "HIGH",
    )
    assert job.JOB_COMPLETE == constants.JOB_COMPLETE


def test_module_level_constants() -> None:
    assert client.RANDOM_UNIQUE_BYTES == 16
    assert worker.POLL_TIMEOUT_IN_SECONDS == 60.0
    assert admin_client.ECHO_STRING == "ping? pong!"
    assert admin_client.DEFAULT_ADMIN_CLIENT_TIMEOUT == 10.0


@pytest.mark.parametrize("name", errors.__all__)
def test_error_classes_derive_from_gearman_error(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.GearmanError)
    assert issubclass(cls, Exception)


def test_connection_error_is_also_the_builtin() -> None:
    assert issubclass(errors.ConnectionError, ConnectionError)
    for name in (
        "ConnectionError",
        "ServerUnavailable",
        "ProtocolError",
        "UnknownCommandError",
        "ExceededConnectionAttempts",
        "InvalidClientState",
        "InvalidWorkerState",
        "InvalidAdminClientState",
    ):
        assert name in errors.__all__


def test_data_encoder_base_class_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        gearman.DataEncoder.encode(b"")
    with pytest.raises(NotImplementedError):
        gearman.DataEncoder.decode(b"")
    assert connection_manager.GearmanConnectionManager.data_encoder is gearman.NoopEncoder
    assert gearman.NoopEncoder.encode(b"x") == b"x"
    assert gearman.NoopEncoder.decode(b"x") == b"x"


#: python-gearman 2.0.2 signatures: positional parameter names and defaults.
SIGNATURES: list[tuple[Any, list[tuple[str, Any]]]] = [
    (client.GearmanClient.__init__, [("host_list", None), ("random_unique_bytes", 16)]),
    (
        client.GearmanClient.submit_job,
        [
            ("task", inspect.Parameter.empty),
            ("data", inspect.Parameter.empty),
            ("unique", None),
            ("priority", None),
            ("background", False),
            ("wait_until_complete", True),
            ("max_retries", 0),
            ("poll_timeout", None),
        ],
    ),
    (
        client.GearmanClient.submit_multiple_jobs,
        [
            ("jobs_to_submit", inspect.Parameter.empty),
            ("background", False),
            ("wait_until_complete", True),
            ("max_retries", 0),
            ("poll_timeout", None),
        ],
    ),
    (
        client.GearmanClient.submit_multiple_requests,
        [
            ("job_requests", inspect.Parameter.empty),
            ("wait_until_complete", True),
            ("poll_timeout", None),
        ],
    ),
    (
        client.GearmanClient.wait_until_jobs_accepted,
        [("job_requests", inspect.Parameter.empty), ("poll_timeout", None)],
    ),
    (
        client.GearmanClient.wait_until_jobs_completed,
        [("job_requests", inspect.Parameter.empty), ("poll_timeout", None)],
    ),
    (
        client.GearmanClient.get_job_status,
        [("current_request", inspect.Parameter.empty), ("poll_timeout", None)],
    ),
    (
        client.GearmanClient.get_job_statuses,
        [("job_requests", inspect.Parameter.empty), ("poll_timeout", None)],
    ),
    (client.GearmanClient.send_job_request, [("current_request", inspect.Parameter.empty)]),
    (worker.GearmanWorker.__init__, [("host_list", None)]),
    (
        worker.GearmanWorker.register_task,
        [("task", inspect.Parameter.empty), ("callback_function", inspect.Parameter.empty)],
    ),
    (worker.GearmanWorker.unregister_task, [("task", inspect.Parameter.empty)]),
    (worker.GearmanWorker.set_client_id, [("client_id", inspect.Parameter.empty)]),
    (worker.GearmanWorker.work, [("poll_timeout", 60.0)]),
    (worker.GearmanWorker.after_poll, [("any_activity", inspect.Parameter.empty)]),
    (
        worker.GearmanWorker.send_job_status,
        [
            ("current_job", inspect.Parameter.empty),
            ("numerator", inspect.Parameter.empty),
            ("denominator", inspect.Parameter.empty),
            ("poll_timeout", None),
        ],
    ),
    *[
        (
            getattr(worker.GearmanWorker, f"send_job_{kind}"),
            [
                ("current_job", inspect.Parameter.empty),
                ("data", inspect.Parameter.empty),
                ("poll_timeout", None),
            ],
        )
        for kind in ("complete", "exception", "data", "warning")
    ],
    (
        worker.GearmanWorker.send_job_failure,
        [("current_job", inspect.Parameter.empty), ("poll_timeout", None)],
    ),
    (worker.GearmanWorker.on_job_execute, [("current_job", inspect.Parameter.empty)]),
    (
        worker.GearmanWorker.on_job_exception,
        [("current_job", inspect.Parameter.empty), ("exc_info", inspect.Parameter.empty)],
    ),
    (
        worker.GearmanWorker.on_job_complete,
        [("current_job", inspect.Parameter.empty), ("job_result", inspect.Parameter.empty)],
    ),
    (admin_client.GearmanAdminClient.__init__, [("host_list", None), ("poll_timeout", 10.0)]),
    (
        admin_client.GearmanAdminClient.send_maxqueue,
        [("task", inspect.Parameter.empty), ("max_size", inspect.Parameter.empty)],
    ),
    (admin_client.GearmanAdminClient.send_shutdown, [("graceful", True)]),
    (admin_client.GearmanAdminClient.cancel_job, [("handle", inspect.Parameter.empty)]),
    (
        job.GearmanJob.__init__,
        [(name, inspect.Parameter.empty) for name in ("connection", "handle", "task", "unique")]
        + [("data", inspect.Parameter.empty)],
    ),
    (
        job.GearmanJobRequest.__init__,
        [
            ("gearman_job", inspect.Parameter.empty),
            ("initial_priority", None),
            ("background", False),
            ("max_attempts", 1),
        ],
    ),
]


@pytest.mark.parametrize(
    ("function", "expected"), SIGNATURES, ids=[f.__qualname__ for f, _ in SIGNATURES]
)
def test_python_gearman_signatures(function: Any, expected: list[tuple[str, Any]]) -> None:
    parameters = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert [(p.name, p.default) for p in parameters[: len(expected)]] == expected
    extra = parameters[len(expected) :]
    assert all(p.default is not inspect.Parameter.empty for p in extra), "new required arguments"
