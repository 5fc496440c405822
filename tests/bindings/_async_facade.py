"""A sync facade over an async binding, so the shared binding suite runs against it.

`AsyncFacade` is a ``runtime`` of the suite (``runtime.GearmanClient(...)``)
built from an async binding module (``gearman.trio``, ``gearman.asyncio``)
and a `Portal` running its event loop.  Its ``GearmanClient``, ``GearmanWorker`` and
``GearmanAdminClient`` are proxies: each instance owns one real async
object, made in the loop, and

- a method that is a coroutine on the async object is called through the
  portal and blocks until it ends (``work()`` included); other methods and
  attribute reads run in the loop's thread (`Portal.call_sync`);
  attribute writes of the async object's own data go to it, other
  attributes (a test's counters, a replaced ``after_poll``) stay on the
  proxy; results and exceptions come back unchanged (the same
  ``GearmanJobRequest`` objects, the same ``gearman.errors`` classes);
- each proxy class, a test's subclass included, has its own subclass of
  the async class, with the proxy class's ``data_encoder``, ``job_class``,
  ``job_request_class`` and ``connection_class``.  A worker proxy's hooks (``after_poll``,
  ``after_job``, ``on_job_*``) that a subclass or instance overrides run
  in a worker thread (`Portal.to_thread`) with the proxy as ``self``, so
  they may call the proxy's methods, ``super()`` reaching the async
  class's own hook; hooks not overridden are the async class's own;
- task functions registered through a worker proxy run in a worker thread
  and get the proxy as their worker; ``worker_abilities`` lists them as
  registered.

Used only from threads other than the loop's (the test's, a
``BackgroundWorker``'s, a hook's or a task's worker thread): the facade's
``concurrency`` is `_binding_helpers.Threads`.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from _binding_helpers import Threads
from _portal import Portal

import gearman
from gearman import constants, errors

__all__ = ["AsyncFacade"]

#: class attributes a proxy class passes on to its async class.
CLASS_ATTRIBUTES = ("data_encoder", "job_class", "job_request_class", "connection_class")

#: the worker's overridable hooks.
HOOKS = ("after_poll", "after_job", "on_job_execute", "on_job_exception", "on_job_complete")


async def _awaited(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, awaited if it returns an awaitable (plain or async hooks)."""
    value = function(*args)
    if inspect.isawaitable(value):
        return await value
    return value


class _Proxy:
    """One async object, driven from sync code through the class's portal."""

    #: set on the facade's own subclass.
    _portal: ClassVar[Portal]
    #: the async binding's class (``gearman.trio.GearmanClient``), set likewise.
    _async_base: ClassVar[type]
    #: the async class of this proxy class (made by ``__init_subclass__``).
    _async_class: ClassVar[type]

    _obj: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "_async_base"):
            cls._async_class = cls._make_async_class()

    @classmethod
    def _make_async_class(cls) -> type:
        namespace: dict[str, Any] = {
            name: getattr(cls, name) for name in CLASS_ATTRIBUTES if hasattr(cls, name)
        }
        namespace["__module__"] = __name__
        namespace["__qualname__"] = f"{cls.__qualname__}.async"
        return type(cls.__name__, (cls._async_base,), namespace)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        obj = self._portal.call_sync(functools.partial(self._async_class, *args, **kwargs))
        obj._facade = self
        object.__setattr__(self, "_obj", obj)

    # ----------------------------------------------------------- forwarding

    def __getattr__(self, name: str) -> Any:
        if name == "_obj":  # not made yet: __init__ failed
            raise AttributeError(name)
        value = self._portal.call_sync(getattr, self._obj, name)
        if inspect.ismethod(value):
            if inspect.iscoroutinefunction(value):
                return self._awaiting(value)
            return self._in_loop(value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        obj = vars(self).get("_obj")  # None while a subclass's __init__ runs first
        if obj is not None and (name in CLASS_ATTRIBUTES or name in vars(obj)):
            self._portal.call_sync(setattr, obj, name, value)
        else:
            object.__setattr__(self, name, value)

    def _awaiting(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._portal.call(functools.partial(method, *args, **kwargs))

        return call

    def _in_loop(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._portal.call_sync(functools.partial(method, *args, **kwargs))

        return call

    def __repr__(self) -> str:
        return f"<sync facade of {self._obj!r}>"

    # ------------------------------------------------------ context manager

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._portal.call(self._obj.__aexit__, *exc_info)


class ClientProxy(_Proxy):
    """``GearmanClient``: every wait through the portal."""


class AdminClientProxy(_Proxy):
    """``GearmanAdminClient``: every command through the portal."""


class WorkerProxy(_Proxy):
    """``GearmanWorker``: hooks and task functions run as sync code in worker threads."""

    @classmethod
    def _make_async_class(cls) -> type:
        async_class = super()._make_async_class()
        for name in HOOKS:
            setattr(async_class, name, _delegating_hook(name, getattr(cls._async_base, name)))
        return async_class

    def _overrides(self, name: str) -> bool:
        return name in vars(self) or getattr(type(self), name) is not getattr(WorkerProxy, name)

    def _base_hook(self, name: str, *args: Any) -> Any:
        """The async class's own hook *name* (plain or async), run in the loop."""
        return self._portal.call(_awaited, getattr(self._async_base, name), self._obj, *args)

    # ------------------------------------------------------------- hooks

    def after_poll(self, any_activity: bool) -> Any:
        return self._base_hook("after_poll", any_activity)

    def after_job(self) -> Any:
        return self._base_hook("after_job")

    def on_job_execute(self, current_job: gearman.GearmanJob) -> Any:
        return self._base_hook("on_job_execute", current_job)

    def on_job_exception(self, current_job: gearman.GearmanJob, exc_info: Any) -> Any:
        return self._base_hook("on_job_exception", current_job, exc_info)

    def on_job_complete(self, current_job: gearman.GearmanJob, job_result: Any) -> Any:
        return self._base_hook("on_job_complete", current_job, job_result)

    # ---------------------------------------------------------- abilities

    def register_task(
        self, task: str | bytes, callback_function: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        portal = self._portal

        async def in_a_thread(worker: Any, job: gearman.GearmanJob) -> Any:
            return await portal.to_thread(callback_function, self, job)

        in_a_thread.__wrapped__ = callback_function  # type: ignore[attr-defined]
        return portal.call_sync(
            functools.partial(self._obj.register_task, task, in_a_thread, *args, **kwargs)
        )

    # ----------------------------------------------------------- replies
    # Methods of the proxy class (not just __getattr__), so that a subclass's
    # hook may reach them with super(), as python-gearman's 1to2 doc does.

    def send_job_complete(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("send_job_complete")(*args, **kwargs)

    def send_job_failure(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("send_job_failure")(*args, **kwargs)

    def send_job_exception(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("send_job_exception")(*args, **kwargs)

    def send_job_data(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("send_job_data")(*args, **kwargs)

    def send_job_warning(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("send_job_warning")(*args, **kwargs)

    def send_job_status(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("send_job_status")(*args, **kwargs)

    @property
    def worker_abilities(self) -> dict[str | bytes, Callable[..., Any]]:
        """The task functions as registered (not their thread wrappers)."""
        registered: dict[str | bytes, Callable[..., Any]]
        registered = self._portal.call_sync(dict, self._obj.worker_abilities)
        return {task: getattr(f, "__wrapped__", f) for task, f in registered.items()}


def _delegating_hook(name: str, own: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """The async class's hook *name*: the proxy's override in a thread, else *own*."""

    async def hook(self: Any, *args: Any) -> Any:
        facade: WorkerProxy = self._facade
        if facade._overrides(name):
            return await facade._portal.to_thread(getattr(facade, name), *args)
        return await _awaited(own, self, *args)

    hook.__name__ = hook.__qualname__ = name
    return hook


class AsyncFacade(types.ModuleType):
    """A ``runtime`` of the binding suite: *binding*'s classes, driven through *portal*.

    Offers what the suite reads of a runtime module: the three classes (as
    proxies), ``DataEncoder``, ``NoopEncoder``, ``GearmanJob``,
    ``GearmanJobRequest``, ``errors`` and the constants, and
    ``concurrency``: threads (test code, hooks and tasks run in threads).
    """

    def __init__(self, name: str, binding: types.ModuleType, portal: Portal) -> None:
        super().__init__(f"{binding.__name__} (sync facade)")
        self.runtime_name = name
        self.binding = binding
        self.portal = portal
        self.concurrency = Threads()
        self.GearmanClient = self._proxy_class(ClientProxy, binding.GearmanClient)
        self.GearmanWorker = self._proxy_class(WorkerProxy, binding.GearmanWorker)
        self.GearmanAdminClient = self._proxy_class(AdminClientProxy, binding.GearmanAdminClient)
        self.DataEncoder = gearman.DataEncoder
        self.NoopEncoder = gearman.NoopEncoder
        self.GearmanJob = gearman.GearmanJob
        self.GearmanJobRequest = gearman.GearmanJobRequest
        self.errors = errors
        self.constants = constants
        for constant in dir(constants):
            if constant.startswith(("JOB_", "PRIORITY_")):
                setattr(self, constant, getattr(constants, constant))

    def _proxy_class(self, proxy: type[_Proxy], async_base: type) -> type:
        namespace = {
            "_portal": self.portal,
            "_async_base": async_base,
            "__module__": __name__,
            "__doc__": f"Sync facade of {async_base.__module__}.{async_base.__qualname__}.",
            **{
                name: getattr(async_base, name)
                for name in CLASS_ATTRIBUTES
                if hasattr(async_base, name)
            },
        }
        return type(async_base.__name__, (proxy,), namespace)
