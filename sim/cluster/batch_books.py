"""The books of batch work: progress of every batch container and the core-seconds ledger.

Work is measured in seconds at full speed: a container of ``c`` cores that runs ``d`` seconds
at full speed does ``c x d`` core-seconds. A throttled container (``eff`` of its ``c`` cores)
progresses at ``eff / c`` seconds per second. When a container is evicted, its progress since
it (re)started is thrown away (``lose``) or kept up to its last checkpoint, taken every
``checkpoint_interval_s`` of work (``checkpoint``); it then queues again and redoes the rest.
The ledger's two conservation laws are stated on ``BatchAccounting``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.cluster.metrics import BatchAccounting
from sim.cluster.scheduler import Cluster
from sim.model import BatchJob, ClusterSection, ColocatedPolicy
from sim.policies.colocation import MCPU_PER_CORE, Container


@dataclass(eq=False)
class JobState:
    """A submitted job and how many of its containers are still unfinished."""

    job: BatchJob
    left: int


@dataclass(eq=False)
class Task:
    """Progress of one batch container: ``kept_s`` is safe, ``run_s`` is progress of the
    current run up to ``since_s``, made at ``rate`` (0 while queued)."""

    container: Container
    job: JobState
    work_s: float
    kept_s: float = 0.0
    run_s: float = 0.0
    rate: float = 0.0
    since_s: float = 0.0
    version: int = 0

    @property
    def cores(self) -> float:
        return self.container.mcpu / MCPU_PER_CORE

    def progress_at(self, t_s: float) -> float:
        """Progress of the current run at ``t_s`` (seconds of full-speed work)."""
        return min(self.run_s + self.rate * (t_s - self.since_s), self.work_s - self.kept_s)

    def settle(self, t_s: float) -> None:
        self.run_s = self.progress_at(t_s)
        self.since_s = t_s


class BatchBooks:
    """Batch containers' progress and the core-seconds ledger of one run."""

    def __init__(self, cluster: Cluster, section: ClusterSection) -> None:
        self.cluster = cluster
        policy = section.policy
        self.checkpoint_interval_s: float | None = None
        if isinstance(policy, ColocatedPolicy) and policy.eviction_mode == "checkpoint":
            self.checkpoint_interval_s = policy.checkpoint_interval_s
        self.tasks: dict[int, Task] = {}
        self.submitted_core_s = self.done_core_s = self.lost_core_s = 0.0
        self.jobs_submitted = self.jobs_rejected = 0

    def arrive(self, job: BatchJob, t_s: float) -> None:
        """Queue the job's containers (or reject the job if no node could ever hold one)."""
        containers = [self.cluster.new_container("batch", job.name, job.cores, job.memory_gb,
                                                 job.priority) for _ in range(job.instances)]
        if not self.cluster.submit_batch(containers[0], t_s):
            self.jobs_rejected += 1
            return
        for container in containers[1:]:
            self.cluster.submit_batch(container, t_s)
        state = JobState(job, job.instances)
        for container in containers:
            self.tasks[container.cid] = Task(container, state, job.duration_s, since_s=t_s)
        self.jobs_submitted += 1
        self.submitted_core_s += job.work_core_s

    def evict(self, container: Container, t_s: float) -> None:
        """The container lost its node at ``t_s``: keep what a checkpoint saved, lose the rest."""
        task = self.tasks[container.cid]
        task.settle(t_s)
        task.rate, task.version = 0.0, task.version + 1
        total_s = task.kept_s + task.run_s
        kept_s = task.kept_s
        if self.checkpoint_interval_s is not None:
            interval_s = self.checkpoint_interval_s
            kept_s = max(task.kept_s, math.floor(total_s / interval_s) * interval_s)
        self.done_core_s += (kept_s - task.kept_s) * task.cores
        self.lost_core_s += (total_s - kept_s) * task.cores
        task.kept_s, task.run_s = kept_s, 0.0

    def rerate(self, container: Container, t_s: float) -> tuple[float, int] | None:
        """The container (re)started or changed cores at ``t_s``: its new finish time and the
        version that finish event must carry, or None if it makes no progress now."""
        task = self.tasks[container.cid]
        task.settle(t_s)
        task.rate = container.eff_mcpu / container.mcpu if container.node_id is not None else 0.0
        task.version += 1
        if task.rate <= 0:
            return None
        return t_s + (task.work_s - task.kept_s - task.run_s) / task.rate, task.version

    def finish(self, cid: int, version: int, t_s: float) -> JobState | None:
        """A finish event fired: complete the container if the event is current. Returns its
        job when that was the job's last container."""
        task = self.tasks.get(cid)
        if task is None or task.version != version:
            return None
        task.run_s = task.work_s - task.kept_s
        self.done_core_s += task.run_s * task.cores
        self.cluster.remove(task.container, t_s)
        del self.tasks[cid]
        task.job.left -= 1
        return task.job if task.job.left == 0 else None

    def running(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.container.node_id is not None]

    def accounting(self, now_s: float, executed_core_s: float) -> BatchAccounting:
        """The ledger at ``now_s``; ``executed_core_s`` is the integral of batch cores held."""
        running = remaining = 0.0
        for task in self.tasks.values():
            progress = task.progress_at(now_s)
            running += progress * task.cores
            remaining += (task.work_s - task.kept_s - progress) * task.cores
        return BatchAccounting(self.submitted_core_s, self.done_core_s, running, remaining,
                               self.lost_core_s, executed_core_s)
