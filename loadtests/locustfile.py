"""peaksim's locustfile: replay a scenario's traffic open-model against an HTTP host.

    locust -f loadtests/locustfile.py --scenario scenarios/singles-day.yaml \\
        --time-scale 120 --host http://127.0.0.1:8099

(``peaksim loadtest`` runs exactly this headless, then merges, reports and gates; see
docs/loadtests.md.) The web UI works too: press start and the shape takes over; the user count
and spawn rate fields are ignored, the shape sizes the users from the traffic curve.

How the pieces fit:

- ``init``: read the options, load the scenario into a ``Replay`` (its declared requests
  compiled), load the user's own classes (``--peaksim-locustfile``), make one user class per
  replayed service and weight them by their expected need; open the process's pooled HTTP
  client. A worker only registers its handlers and opens its client.
- ``test_start``: a local runner starts its replay at once; a master tells each connected worker
  its share of the schedule and the scenario's text (``peaksim_share`` message, sent before the
  spawn messages, so it arrives first) and opens the results file; a worker builds its replay
  from them and starts it.
- Measurements: a local runner drains its recorder into ``results.jsonl`` every
  ``FLUSH_S`` seconds; a worker adds its records to each stats report it sends the master
  (``report_to_master``), and the master appends them (``worker_report``).
- ``OpenModelShape`` sets the user count from the curve and the observed latency (Little's law)
  and stops the test once the schedule is over and every answer is in (or the drain time ran
  out); a master waits for a report from every worker sent after its schedule ended.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.collector import ResultsWriter
from loadtests.custom import load_custom_users, watch_requests
from loadtests.flows import (
    REPLAY_ATTRIBUTE,
    DeclaredUser,
    declared_user_class,
    replay_of,
    target_of,
)
from loadtests.replay import DEFAULT_SCENARIO, START_LEAD_S, Replay, ReplayOptions
from loadtests.schedule import ARRIVALS
from loadtests.sizing import UserPlan
from loadtests.target import SOCKETS_PER_PROCESS
from sim.model import parse_scenario
from sim.runio import new_run_dir

__all__ = ["OpenModelShape", "ReplayUser"]

log = logging.getLogger("peaksim.loadtest")
FLUSH_S = 2.0
"""Seconds between two drains of a local recorder into the results file."""
END_GRACE_S = 0.2
"""Seconds after the schedule's end at which sends not yet made are counted as dropped."""
SHARE_MESSAGE = "peaksim_share"
WARM_SOCKETS = SOCKETS_PER_PROCESS
"""Connections a local generator opens before its first send (at most its users): opened
later, when the first rise of latency finds every connection busy, each new one costs the
target an accept and a handler while it is already behind (a storm of hundreds)."""
_CUSTOM = "peaksim_custom"
_WRITER = "peaksim_writer"
_SHARE = "peaksim_share"
_SCENARIO_TEXT = "peaksim_scenario_text"
_PLAN = "peaksim_plan"


class ReplayUser(DeclaredUser):
    """The class Locust finds in this file (it refuses a locustfile without one). ``init``
    replaces it, before any user is spawned, by one class per replayed service
    (``declared_user_class``, or the user's own from ``--peaksim-locustfile``)."""

    abstract = False


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    group = parser  # Locust's parser: its custom arguments also appear in the web UI
    group.add_argument("--scenario", dest="peaksim_scenario", default=DEFAULT_SCENARIO,
                       help="Scenario YAML file to replay.")
    group.add_argument("--time-scale", dest="peaksim_time_scale", type=float, default=None,
                       help="Compress the scenario's time by this (default: its loadtest "
                            "section, else 1).")
    group.add_argument("--rate-scale", dest="peaksim_rate_scale", type=float, default=None,
                       help="Multiply every rate (default: its loadtest section, else 1).")
    group.add_argument("--duration", dest="peaksim_duration_s", type=float, default=None,
                       help="Replay only the first S seconds of the scaled curve.")
    group.add_argument("--arrivals", dest="peaksim_arrivals", choices=ARRIVALS,
                       default="poisson", help="Send times: poisson (as the simulator) or "
                                               "paced (evenly by the rate's integral).")
    group.add_argument("--lag-threshold-ms", dest="peaksim_lag_threshold_ms", type=float,
                       default=50.0, help="A send later than this counts as generator lag.")
    group.add_argument("--lag-tolerance", dest="peaksim_lag_tolerance", type=float,
                       default=0.01, help="Share of late or unsent sends the generator may have.")
    group.add_argument("--window", dest="peaksim_window_s", type=float, default=None,
                       help="Measurement window in seconds (default: scenario, at most 10).")
    group.add_argument("--request-timeout", dest="peaksim_request_timeout_s", type=float,
                       default=30.0, help="Client timeout per attempt, in seconds.")
    group.add_argument("--results-dir", dest="peaksim_results_dir", default=None,
                       help="Directory for results.jsonl (default: a new run directory).")
    group.add_argument("--max-users", dest="peaksim_max_users", type=int, default=2000,
                       help="Upper bound of the user count (all workers together).")
    group.add_argument("--insecure", dest="peaksim_insecure", action="store_true",
                       default=False, help="HTTPS: do not verify the target's certificate.")
    group.add_argument("--ca-bundle", dest="peaksim_ca_bundle", default=None,
                       help="HTTPS: PEM file of CA certificates to trust.")
    group.add_argument("--peaksim-locustfile", dest="peaksim_locustfile", default=None,
                       help="Your own locustfile: its classes with peaksim_service = NAME "
                            "drive those services.")
    group.add_argument("--replay-seed", dest="peaksim_seed", type=int, default=None,
                       help="Seed of the send schedule (default: the scenario's).")


@events.init.add_listener
def on_init(environment: Environment, **_kw: Any) -> None:
    runner = environment.runner
    options = ReplayOptions.from_namespace(environment.parsed_options)
    custom = load_custom_users(options.locustfile) if options.locustfile else {}
    setattr(environment, _CUSTOM, custom)
    if custom:
        watch_requests(environment)
        _secure(custom, options)
    if isinstance(runner, WorkerRunner):
        # A worker learns the scenario and its share from the master when the test starts
        # (its own command line may name no scenario, or a path that does not exist here).
        runner.register_message(SHARE_MESSAGE, _on_share)

        def ship(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            replay = getattr(environment, REPLAY_ATTRIBUTE, None)
            if isinstance(replay, Replay) and replay.recorder is not None:
                data["peaksim"] = replay.recorder.drain()
                data["peaksim_state"] = {"run_s": replay.now(), "in_flight": replay.busy,
                                         "running": replay.running,
                                         "peaks": replay.take_peaks()}

        environment.events.report_to_master.add_listener(ship)
        return
    replay = Replay(options, custom=frozenset(custom))
    setattr(environment, REPLAY_ATTRIBUTE, replay)
    # Read once, now: workers get this text with their share, whatever their file system.
    setattr(environment, _SCENARIO_TEXT, Path(options.scenario).read_text(encoding="utf-8"))
    if replay.skipped:
        log.warning("no request flow for service(s) %s: not replayed", ", ".join(replay.skipped))
    if not replay.services:
        raise RuntimeError(f"{options.scenario}: none of its services has a declared request "
                           f"or a class of --peaksim-locustfile")
    processes = int(getattr(environment.parsed_options, "expect_workers", 1) or 1) \
        if isinstance(runner, MasterRunner) else 1
    plan = UserPlan(replay.traffic, replay.services, replay.prior_ms(),
                    replay.sizing_for(processes * SOCKETS_PER_PROCESS), replay.until_s)
    setattr(environment, _PLAN, plan)
    environment.user_classes[:] = _user_classes(environment, replay, plan)
    if isinstance(runner, MasterRunner):

        def collect(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            writer = getattr(environment, _WRITER, None)
            if isinstance(writer, ResultsWriter):
                _collect(writer, data.get("peaksim", []))
            if "peaksim_state" in data:
                plan.workers[client_id] = dict(data["peaksim_state"])

        environment.events.worker_report.add_listener(collect)


def _user_classes(environment: Environment, replay: Replay, plan: UserPlan) -> list[type]:
    """One class per replayed service. Locust splits users between classes by their class
    attribute ``weight``, the only channel it reads: set here, before any dispatch."""
    custom: dict[str, type] = getattr(environment, _CUSTOM, {})
    classes = []
    for name in replay.services:
        weight = plan.weights.get(name, 1)
        if name in custom:
            custom[name].weight = weight
            classes.append(custom[name])
        else:
            classes.append(declared_user_class(name, weight))
    return classes


def _secure(custom: dict[str, type], options: ReplayOptions) -> None:
    """The user's FastHttpUser classes verify HTTPS as peaksim does, unless they say
    otherwise themselves (Locust's own default is not to verify)."""

    for user_class in custom.values():
        own = any("insecure" in vars(base) for base in user_class.__mro__
                  if base.__module__ not in ("locust.contrib.fasthttp",))
        if hasattr(user_class, "insecure") and not own:
            user_class.insecure = options.insecure  # type: ignore[attr-defined]
        if options.ca_bundle and hasattr(user_class, "ssl_context_factory"):
            user_class.ssl_context_factory = staticmethod(  # type: ignore[attr-defined]
                _trusting(options.ca_bundle))


def _trusting(ca_bundle: str) -> Any:
    """An SSL context factory that trusts ``ca_bundle`` (whatever CA file it is offered)."""
    import ssl

    def factory(**_kw: Any) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=ca_bundle)

    return factory


def _on_share(environment: Environment, msg: Any, **_kw: Any) -> None:
    """A worker's share arrives before its spawn messages: build its replay and the user
    classes the master will name (one per replayed service)."""
    setattr(environment, _SHARE, dict(msg.data))
    runner = environment.runner
    assert isinstance(runner, WorkerRunner)
    replay = _worker_replay(environment, runner)
    setattr(environment, REPLAY_ATTRIBUTE, replay)
    custom: dict[str, type] = getattr(environment, _CUSTOM, {})
    environment.user_classes[:] = [custom.get(name) or declared_user_class(name, 1)
                                   for name in replay.services]


def _worker_replay(environment: Environment, runner: WorkerRunner) -> Replay:
    """The worker's replay: the master's scenario text and options, its share of the sends."""
    options = ReplayOptions.from_namespace(environment.parsed_options)
    share = getattr(environment, _SHARE, None) or {}
    scenario = None
    if "scenario_text" in share:
        local = Path(options.scenario)
        base_dir = str(local.resolve().parent) if local.exists() else str(Path.cwd())
        scenario = parse_scenario(share["scenario_text"], options.scenario, base_dir)
    replay = Replay(options, scenario=scenario,
                    custom=frozenset(getattr(environment, _CUSTOM, {})))
    if "count" in share:
        replay.share = (int(share["index"]), int(share["count"]))
    else:  # no share message came: Locust's own worker index and expected worker count
        expected = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
        replay.share = (max(0, runner.worker_index) % expected, expected)
    return replay


@events.test_start.add_listener
def on_test_start(environment: Environment, **_kw: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        replay = getattr(environment, REPLAY_ATTRIBUTE, None)
        if not isinstance(replay, Replay):  # no share message came (a worker started late)
            replay = _worker_replay(environment, runner)
            setattr(environment, REPLAY_ATTRIBUTE, replay)
        index, count = replay.share
        replay.start(index, count, source=f"worker-{index}")
        _end_schedule_later(replay)
        return
    replay = replay_of(environment)
    count = 1
    if isinstance(runner, MasterRunner):
        clients = sorted(c.id for c in runner.clients.values())
        count = max(1, len(clients))
        text = getattr(environment, _SCENARIO_TEXT)
        for index, client_id in enumerate(clients):
            runner.send_message(SHARE_MESSAGE, {"index": index, "count": count,
                                                "scenario_text": text}, client_id)
    plan: UserPlan = getattr(environment, _PLAN)
    writer = _open_writer(replay, count, isinstance(runner, MasterRunner))
    setattr(environment, _WRITER, writer)
    if not isinstance(runner, MasterRunner):
        replay.start(0, 1, source="local")
        _end_schedule_later(replay)
        gevent.spawn(_flush_loop, environment, replay, writer)
        if replay.requests:  # connections opened while the users spawn, not at t=0
            gevent.spawn(target_of(environment).pool.warm, min(plan.initial, WARM_SOCKETS))
    else:
        plan.workers.clear()


def _end_schedule_later(replay: Replay) -> None:
    """Sends still unsent shortly after the schedule's end will never go: count them dropped
    now, so the records say so before the run stops."""
    gevent.spawn_later(max(0.0, replay.until_s - replay.now()) + END_GRACE_S, replay.finish,
                       replay.run_id)


def _open_writer(replay: Replay, processes: int, distributed: bool) -> ResultsWriter:
    directory = (Path(replay.options.results_dir) if replay.options.results_dir
                 else new_run_dir(replay.scenario.name, None, kind="loadtest"))
    meta = {
        "scenario": replay.scenario.name, "scenario_file": replay.options.scenario,
        "time_scale": replay.time_scale, "rate_scale": replay.rate_scale,
        "until_s": replay.until_s, "window_s": replay.window_s,
        "arrivals": replay.options.arrivals, "seed": replay.seed,
        "lag_threshold_ms": replay.options.lag_threshold_ms,
        "lag_tolerance": replay.options.lag_tolerance,
        "request_timeout_s": replay.options.request_timeout_s,
        "services": list(replay.services), "skipped": list(replay.skipped),
        "processes": processes, "distributed": distributed,
        "t0_unix": time.time() + START_LEAD_S,  # the replays' t=0 (wall clock, for /healthz)
    }
    log.info("peaksim results: %s", directory)
    return ResultsWriter(directory, meta, replay.window_s, replay.options.lag_tolerance)


def _collect(writer: ResultsWriter, records: list[dict[str, Any]]) -> None:
    for warning in writer.add(records):
        log.warning(warning)


def _flush_loop(environment: Environment, replay: Replay, writer: ResultsWriter) -> None:
    while replay.running and replay.recorder is not None:
        gevent.sleep(FLUSH_S)
        if replay.recorder is not None:
            _collect(writer, replay.recorder.drain())


@events.test_stop.add_listener
def on_test_stop(environment: Environment, **_kw: Any) -> None:
    _final_collect(environment)


@events.quitting.add_listener
def on_quitting(environment: Environment, **_kw: Any) -> None:
    # On SIGTERM Locust fires ``quitting`` before it stops the users (and ``test_stop``), so
    # the last measurements are collected here too before the file is closed.
    _final_collect(environment)
    writer = getattr(environment, _WRITER, None)
    if isinstance(writer, ResultsWriter):
        writer.close()


def _final_collect(environment: Environment) -> None:
    """End the schedule (counting unsent sends) and, in local mode, write what is left."""
    replay = getattr(environment, REPLAY_ATTRIBUTE, None)
    if not isinstance(replay, Replay):
        return  # a worker that never started a test
    replay.finish()
    writer = getattr(environment, _WRITER, None)
    if isinstance(writer, ResultsWriter) and replay.recorder is not None:
        _collect(writer, replay.recorder.drain())


class OpenModelShape(LoadTestShape):
    """Users from Little's law on the curve and the observed latency; stops once the schedule
    is over and no answer is outstanding (or after the drain time)."""

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        environment = self.runner.environment
        replay = replay_of(environment)
        plan: UserPlan = getattr(environment, _PLAN)
        run_s = self.get_run_time() - START_LEAD_S
        # One spawn rate for the whole run: Locust re-dispatches whenever the returned tuple
        # changes, and each dispatch pauses every worker for a moment. Fast enough that the
        # first users are all there well within the start lead, even on a busy machine.
        spawn_rate = float(max(100, 4 * plan.initial))
        if run_s > replay.until_s:
            if run_s > replay.until_s + replay.drain_s or self._settled(replay, plan, run_s):
                return None
            return plan.current, spawn_rate
        observed: dict[str, tuple[int, float]] = {}
        for (name, _method), entry in list(self.runner.stats.entries.items()):
            if name in replay.services:
                count, total = observed.get(name, (0, 0.0))
                observed[name] = (count + entry.num_requests,
                                  total + float(entry.total_response_time))
        if isinstance(self.runner, MasterRunner):
            peaks: dict[str, int] = {}
            for state in plan.workers.values():
                for name, peak in state.get("peaks", {}).items():
                    peaks[name] = peaks.get(name, 0) + int(peak)
        else:
            peaks = replay.take_peaks()
        if isinstance(self.runner, MasterRunner):
            cpu = max((float(c.cpu_usage) for c in self.runner.clients.values()), default=0.0)
        else:
            cpu = float(self.runner.current_cpu_usage)
        before = plan.current
        users = plan.target(max(0.0, run_s), observed, peaks,
                            cpu_saturated=cpu >= plan.policy.cpu_saturated_percent)
        if plan.capped and users > before:
            log.warning("user count capped at --max-users %d: sends may fall behind", users)
        return users, spawn_rate

    def _settled(self, replay: Replay, plan: UserPlan, run_s: float) -> bool:
        """Everything sent was answered and (distributed) every worker has reported so since
        its schedule ended."""
        if not isinstance(self.runner, MasterRunner):
            return run_s > replay.until_s + 2 * END_GRACE_S and replay.busy == 0
        workers = self.runner.clients.values()
        states = [plan.workers.get(w.id) for w in workers]
        return bool(states) and all(
            s is not None and s["run_s"] > replay.until_s + 2 * END_GRACE_S
            and not s["running"] and s["in_flight"] == 0 for s in states)
