"""Locust users of a replay: one class per service, open-model paced.

A user does not loop on its own rhythm: it takes the next intended send time of its service
from the process's shared schedule (``Replay.claim``), sleeps until then, sends, records, and
takes the next one. How many users exist is the shape's business (``loadtests.sizing``).

What a send is depends on the service:

- a **declared request** (``loadtest.requests`` of the scenario, ``loadtests.declared``): the
  request is rendered once per send (kept across its retries), sent through the process's
  pooled client (``loadtests.target``), judged (``success`` codes, ``expect``), and its
  captures are kept for the services that use them. A send that needs a captured value none
  is left of is recorded as ``no_data`` and not sent.
- the user's own Locust class (``--locustfile``, ``loadtests.custom``): its task is called.

Failed attempts are retried as the scenario's ``retries`` of the service says (the simulator's
client model). Locust's own statistics get one entry per attempt, named by service (raw
latency); the corrected latencies are in the peaksim results.
"""

from __future__ import annotations

from typing import Any

import gevent
from gevent import GreenletExit
from locust import User, constant, task

from loadtests.declared import CompiledRequest, context_for
from loadtests.recorder import Outcome, Recorder, classify
from loadtests.replay import Replay, backoff_s, retryable
from loadtests.send_context import TemplateFunctions, base_context
from loadtests.target import SOCKETS_PER_PROCESS, Answer, Target, TlsOptions

REPLAY_ATTRIBUTE = "peaksim_replay"
TARGET_ATTRIBUTE = "peaksim_target"
IDLE_S = 0.5
"""How long a user with nothing to send sleeps before looking again."""


def replay_of(environment: Any) -> Replay:
    """The ``Replay`` the locustfile attached to the Locust environment."""
    replay = getattr(environment, REPLAY_ATTRIBUTE, None)
    if not isinstance(replay, Replay):
        raise RuntimeError("no peaksim replay on this Locust environment (is the locustfile's "
                           "init listener registered?)")
    return replay


def target_of(environment: Any) -> Target:
    """The process's pooled client for ``environment.host`` (made on first use: a worker
    learns the host with its first spawn message)."""
    target = getattr(environment, TARGET_ATTRIBUTE, None)
    if isinstance(target, Target):
        return target
    options = environment.parsed_options
    tls = TlsOptions(bool(getattr(options, "peaksim_insecure", False)),
                     getattr(options, "peaksim_ca_bundle", None))
    timeout_s = float(getattr(options, "peaksim_request_timeout_s", 30.0) or 30.0)
    target = Target(environment.host, tls, timeout_s, SOCKETS_PER_PROCESS)
    setattr(environment, TARGET_ATTRIBUTE, target)
    return target


class Pacer:
    """The open-model loop shared by every replay user: claim a send time, wait, send.
    (A mixin: Locust users that derive from it list ``Pacer.replay_next`` as their task.)"""

    service = ""
    replay: Replay

    @task
    def replay_next(self) -> None:
        """Send this service's requests at their intended times, for as long as the user
        lives: the loop never returns to Locust's task scheduler, which would add a task
        choice and a zero wait (a greenlet switch) per request."""
        while True:
            self.send_next()

    def send_next(self) -> None:
        """Claim the next intended send time, wait for it, send."""
        replay = self.replay
        intended = replay.claim(self.service)
        if intended is None:
            gevent.sleep(IDLE_S)
            return
        try:
            delay = intended - replay.now()
            if delay > 0:
                gevent.sleep(delay)
        except GreenletExit:
            replay.give_back(self.service, intended)
            raise
        recorder = replay.recorder
        if recorder is None:
            return
        replay.begin_send(self.service)
        try:
            self.send(intended, recorder)
        finally:
            replay.end_send(self.service)

    def send(self, intended_s: float, recorder: Recorder) -> None:
        raise NotImplementedError


class DeclaredUser(Pacer, User):
    """Sends its service's declared request; see the module docstring."""

    abstract = True
    wait_time = constant(0)
    tasks = [Pacer.replay_next]

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        replay = replay_of(environment)
        self.replay = replay
        self.rng = replay.user_rng(self.service)
        self.functions = TemplateFunctions(self.rng, replay.sequence, replay.zipf_tables)
        self.base = base_context(self.functions, replay.env_values, (self.service,))
        self.request: CompiledRequest = replay.requests[self.service]
        self.target = target_of(environment)
        self.stats = environment.stats
        self.request.values.prime(dict(self.base))

    def send(self, intended_s: float, recorder: Recorder) -> None:
        replay = self.replay
        ctx = context_for(self.request, self.base, replay.captures, replay.tables, self.rng)
        if ctx is None:
            recorder.no_data(self.service, intended_s)
            return
        rendered = self.request.render(ctx)
        retries = replay.retries(self.service)
        attempt = 0
        while True:
            sent_s = replay.now()
            recorder.sent(self.service, intended_s, sent_s, retry=attempt > 0)
            answer = self.target.send(rendered.method, rendered.path, rendered.headers,
                                      rendered.body, self.request.spec.timeout_s)
            done_s = replay.now()
            self.stats.log_request(rendered.method, self.service, (done_s - sent_s) * 1000.0,
                                   len(answer.content))
            outcome, reason = self._judge(answer)
            last = (outcome is Outcome.COMPLETED or retries is None
                    or attempt >= retries.max or not retryable(answer.status))
            recorder.finished(self.service, outcome, intended_s, sent_s, done_s,
                              final_failure=last and outcome is not Outcome.COMPLETED,
                              reason=reason, first=attempt == 0)
            if last:
                return
            attempt += 1
            assert retries is not None
            wait_s = backoff_s(retries, attempt, self.rng)
            intended_s = done_s + wait_s  # a retry is due after its backoff, not before
            gevent.sleep(wait_s)

    def _judge(self, answer: Answer) -> tuple[Outcome, str | None]:
        """The attempt's outcome and, unless it completed, why it failed."""
        if answer.status == 0:
            reason = answer.error or "no answer"
            self.stats.log_error(self.request.spec.method, self.service, reason)
            return classify(0, answer.timed_out), reason
        completed, reason, record = self.request.judge(answer.status, answer.content)
        if completed:
            if record is not None:
                self.replay.captures.put(self.service, record)
            return Outcome.COMPLETED, None
        self.stats.log_error(self.request.spec.method, self.service, reason)
        if self.request.ok_status(answer.status):
            return Outcome.FAILED, reason  # the answer came but failed its check
        outcome = classify(answer.status, False)
        return (Outcome.FAILED if outcome is Outcome.COMPLETED else outcome), reason


def declared_user_class(service: str, weight: int) -> type[DeclaredUser]:
    """A Locust user class that sends ``service``'s declared request."""
    name = "Declared_" + "".join(c if c.isalnum() else "_" for c in service)
    return type(name, (DeclaredUser,), {"service": service, "weight": weight,
                                         "abstract": False, "__module__": __name__})
