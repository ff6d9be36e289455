"""The user's own Locust classes (``peaksim loadtest --locustfile mine.py``), open-model paced.

A class of the user's locustfile that has ``peaksim_service = "checkout"`` drives that
service: its method named ``send`` (or else its only ``@task``) is called once per intended
send time of the service, by peaksim's scheduler (``loadtests.flows.Pacer``), instead of in a
closed loop. Everything the call sends through ``self.client`` fires Locust's ``request``
event; peaksim listens to it for the greenlet making the call and judges the send: completed
when every request of the call succeeded and the call returned, failed otherwise (the last
failing request's status says timed out / shed / failed, and whether the scenario's retries
apply; a raised exception is a failure named after it). Latency is measured as for declared
requests: corrected from the intended send time, raw from the actual start, lag counted.
A call that succeeds and returns a mapping (``{"id": ...}``) gives that service's captured
record: declared requests of other services use it as ``SERVICE.NAME``, as if captured.

Imports Locust and gevent: only the locustfile imports this module.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust import User, constant
from locust.exception import InterruptTaskSet, RescheduleTask, StopUser

from loadtests.flows import Pacer, replay_of
from loadtests.recorder import Outcome, Recorder, classify
from loadtests.replay import backoff_s, retryable
from sim.errors import LoadTestError

SERVICE_ATTRIBUTE = "peaksim_service"
_PROBES = "peaksim_probes"


class _Probe:
    """What one call of the user's code sent: its last failure (status, timed out, reason)."""

    __slots__ = ("failure",)

    def __init__(self) -> None:
        self.failure: tuple[int, bool, str] | None = None


def _on_request(environment: Any) -> Callable[..., None]:
    probes: dict[Any, _Probe] = getattr(environment, _PROBES)

    def listener(exception: BaseException | None = None, response: Any = None,
                 **_kw: Any) -> None:
        probe = probes.get(gevent.getcurrent())
        if probe is None or exception is None:
            return
        status = int(getattr(response, "status_code", 0) or 0)
        timed_out = isinstance(exception, TimeoutError | gevent.Timeout)
        probe.failure = (status, timed_out, f"status {status}" if status
                         else type(exception).__name__)

    return listener


def watch_requests(environment: Any) -> None:
    """Listen to Locust's ``request`` event for the calls peaksim makes (once per process)."""
    if not hasattr(environment, _PROBES):
        setattr(environment, _PROBES, {})
        environment.events.request.add_listener(_on_request(environment))


class CustomPacer(Pacer):
    """Mixin placed before the user's class: paced calls of its send function."""

    peaksim_call: Callable[[Any], Any]

    def peaksim_setup(self, environment: Any) -> None:
        replay = replay_of(environment)
        self.replay = replay
        self.rng = replay.user_rng(self.service)
        self.probes: dict[Any, _Probe] = getattr(environment, _PROBES)

    def send(self, intended_s: float, recorder: Recorder) -> None:
        replay = self.replay
        retries = replay.retries(self.service)
        attempt = 0
        while True:
            sent_s = replay.now()
            recorder.sent(self.service, intended_s, sent_s, retry=attempt > 0)
            status, timed_out, reason = self._call()
            done_s = replay.now()
            outcome = Outcome.COMPLETED if reason is None else classify(status, timed_out)
            if reason is not None and outcome is Outcome.COMPLETED:
                outcome = Outcome.FAILED  # a 2xx answer the user's code marked as failed
            last = (outcome is Outcome.COMPLETED or retries is None
                    or attempt >= retries.max or not retryable(status))
            recorder.finished(self.service, outcome, intended_s, sent_s, done_s,
                              final_failure=last and outcome is not Outcome.COMPLETED,
                              reason=reason)
            if last:
                return
            attempt += 1
            assert retries is not None
            wait_s = backoff_s(retries, attempt, self.rng)
            intended_s = done_s + wait_s
            gevent.sleep(wait_s)

    def _call(self) -> tuple[int, bool, str | None]:
        """Run the user's send function once: (status of its failure, timed out, reason)."""
        probe = _Probe()
        current = gevent.getcurrent()
        self.probes[current] = probe
        try:
            record = type(self).peaksim_call(self)
        except (StopUser, gevent.GreenletExit):
            raise
        except (RescheduleTask, InterruptTaskSet) as exc:
            return 0, False, type(exc).__name__
        except Exception as exc:  # the user's code failed: a failed send, named after it
            if probe.failure is not None:
                return probe.failure
            return 0, isinstance(exc, TimeoutError), f"{type(exc).__name__}: {exc}"[:120]
        finally:
            self.probes.pop(current, None)
        if probe.failure is not None:
            return probe.failure
        if isinstance(record, dict) and record:
            self.replay.captures.put(self.service, dict(record))
        return 200, False, None


def _send_function(cls: type[User], file: str) -> Callable[[Any], Any]:
    send = cls.__dict__.get("send") or next(
        (base.send for base in cls.__mro__[1:]
         if "send" in base.__dict__ and issubclass(base, User) and base is not User), None)
    if callable(send):
        return send
    tasks = [t for t in cls.tasks if callable(t) and not inspect.isclass(t)]
    unique = list(dict.fromkeys(tasks))
    if len(unique) != 1:
        raise LoadTestError(f"{file}: class {cls.__name__} (peaksim_service = "
                            f"{getattr(cls, SERVICE_ATTRIBUTE)!r}) needs one @task or a method "
                            f"named send, it has {len(unique)} tasks")
    return unique[0]


def load_custom_users(path: str) -> dict[str, type[User]]:
    """The user classes of the locustfile at ``path`` that name a ``peaksim_service``, made
    open-model (service name -> class); ``LoadTestError`` if none or two for one service."""
    file = Path(path)
    if not file.is_file():
        raise LoadTestError(f"--locustfile {path}: file not found")
    name = "peaksim_user_" + "".join(c if c.isalnum() else "_" for c in file.stem)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise LoadTestError(f"--locustfile {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.resolve().parent))  # as Locust does: its own imports work
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise LoadTestError(f"--locustfile {path}: {type(exc).__name__}: {exc}") from None
    found: dict[str, type[User]] = {}
    for value in vars(module).values():
        if not (inspect.isclass(value) and issubclass(value, User)):
            continue
        service = value.__dict__.get(SERVICE_ATTRIBUTE)
        if not isinstance(service, str):
            continue
        if service in found:
            raise LoadTestError(f"--locustfile {path}: two classes have peaksim_service = "
                                f"{service!r} ({found[service].__name__}, {value.__name__})")
        found[service] = _paced(value, _send_function(value, path))
    if not found:
        raise LoadTestError(f"--locustfile {path}: no user class has a peaksim_service "
                            f"attribute (e.g. peaksim_service = \"checkout\")")
    return found


def _paced(cls: type[User], call: Callable[[Any], Any]) -> type[User]:
    service = str(getattr(cls, SERVICE_ATTRIBUTE))

    def __init__(self: Any, environment: Any) -> None:
        cls.__init__(self, environment)
        CustomPacer.peaksim_setup(self, environment)

    paced = type(cls.__name__, (CustomPacer, cls), {
        "__init__": __init__, "service": service, "peaksim_call": call, "abstract": False,
        "wait_time": constant(0), "__module__": cls.__module__})
    paced.tasks = [Pacer.replay_next]
    return paced
