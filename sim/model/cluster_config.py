"""The scenario's ``cluster:`` section: nodes, colocation policy, placement, cluster autoscaling,
interference and the batch workload.

Every knob of the cluster model is defined here once. Sizes are in cores and GB, prices per
node-hour, times in seconds (numbers or strings such as ``"2m"``). ``check_cluster`` holds the
checks that need the scenario's services (an instance no node can hold, a pool without nodes);
the batch workload models live in ``sim.model.batch_config``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sim.model.batch_config import BatchWorkload
from sim.model.interference import Interference
from sim.schema import Duration, Loc, PositiveDuration, Strict, field_errors, suggest

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

STRATEGY_NAMES = ("first_fit", "best_fit", "spread")
"""Placement strategies (``sim.policies.colocation.PLACEMENT_STRATEGIES`` implements each)."""

POLICY_NAMES = ("dedicated", "colocated")
"""Colocation policies (``sim.policies.colocation.COLOCATION_POLICIES`` implements each)."""


def _choice(kind: str, names: tuple[str, ...]) -> Callable[[Any], Any]:
    """Before-validator: a known name, else an error naming the closest one."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value not in names:
            raise PydanticCustomError(
                "unknown_name",
                "unknown {kind} '{value}'{hint}; expected one of: {known}",
                {"kind": kind, "value": value, "hint": suggest(value, names),
                 "known": ", ".join(names)},
            )
        return value

    return check


Strategy = Annotated[
    Literal["first_fit", "best_fit", "spread"],
    BeforeValidator(_choice("placement strategy", STRATEGY_NAMES)),
]


class NodeType(Strict):
    """One kind of machine. ``count`` nodes exist at t=0; with cluster autoscaling the count
    moves within ``min``..``max`` (both default to ``count``), and a new node is ready
    ``provision_s`` after it was asked for (billed from that moment)."""

    name: str
    cores: float = Field(gt=0, le=10_000)
    memory_gb: float = Field(gt=0, le=100_000)
    price_per_hour: float = Field(default=0.0, ge=0)
    count: int = Field(ge=0, le=100_000)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0, le=100_000)
    provision_s: Duration = 120.0

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("expected letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> NodeType:
        if not self.min_count <= self.count <= self.max_count:
            raise field_errors([(("count",), f"count ({self.count}) must lie within min..max "
                                 f"({self.min_count}..{self.max_count})")])
        return self

    @property
    def min_count(self) -> int:
        """Fewest nodes of this type cluster autoscaling may leave."""
        return self.count if self.min is None else self.min

    @property
    def max_count(self) -> int:
        """Most nodes of this type cluster autoscaling may run (ready or provisioning)."""
        return self.count if self.max is None else self.max


class DedicatedPolicy(Strict):
    """Online and batch on separate node pools (the baseline).

    ``online`` maps a node type to how many of its nodes form the online pool (a number, or
    ``all``); the other nodes of every type form the batch pool. Nodes that cluster autoscaling
    adds for pending online instances join the online pool.
    """

    name: Literal["dedicated"]
    online: dict[str, int | Literal["all"]] = Field(min_length=1)

    @field_validator("online")
    @classmethod
    def _check_counts(cls, value: dict[str, int | str]) -> dict[str, int | str]:
        bad = [(k,) for k, v in value.items() if isinstance(v, int) and v < 0]
        if bad:
            raise field_errors([(loc, "expected a count >= 0 or 'all'") for loc in bad])
        return value

    def online_nodes(self, node_type: NodeType) -> int:
        """How many of the ``count`` initial nodes of ``node_type`` serve online instances."""
        share = self.online.get(node_type.name, 0)
        return node_type.count if share == "all" else min(int(share), node_type.count)


class ColocatedPolicy(Strict):
    """One shared pool; online instances come first.

    When an online instance finds no free room, batch containers on the chosen node yield:
    ``preemption`` ``lose`` (evicted, their progress is lost and they queue again),
    ``checkpoint`` (evicted, progress up to the last checkpoint every
    ``checkpoint_interval_s`` of work is kept) or ``throttle`` (they keep their memory and run on
    fewer cores, down to ``throttle_min_share`` of their request; when memory is short they are
    evicted per ``throttle_fallback``). ``batch_max_share`` caps the cores batch may take on a
    node. When online scales in, batch refills the freed capacity after ``refill_delay_s``
    (never, with ``batch_refill: false``: the capacity stays reserved for online).
    """

    name: Literal["colocated"]
    preemption: Literal["lose", "checkpoint", "throttle"] = "lose"
    checkpoint_interval_s: PositiveDuration = 300.0
    throttle_min_share: float = Field(default=0.1, ge=0, lt=1)
    throttle_fallback: Literal["lose", "checkpoint"] = "lose"
    batch_refill: bool = True
    refill_delay_s: Duration = 0.0
    batch_max_share: float = Field(default=1.0, gt=0, le=1)

    @property
    def eviction_mode(self) -> Literal["lose", "checkpoint"]:
        """What happens to the progress of an evicted batch container."""
        return self.throttle_fallback if self.preemption == "throttle" else self.preemption


def _policy_before(value: Any) -> Any:
    if isinstance(value, str):
        value = {"name": value}
    if isinstance(value, dict):
        name = value.get("name")
        if name is None:
            known = {"known": ", ".join(POLICY_NAMES)}
            raise PydanticCustomError("missing_name", "give the policy 'name' ({known})", known)
        _choice("colocation policy", POLICY_NAMES)(name)
    return value


PolicySpec = Annotated[
    DedicatedPolicy | ColocatedPolicy,
    Field(discriminator="name"),
    BeforeValidator(_policy_before, json_schema_input_type=str | DedicatedPolicy | ColocatedPolicy),
]


def _both(value: Any) -> Any:
    return {"online": value, "batch": value} if isinstance(value, str) else value


class Placement(Strict):
    """Placement strategy for online instances and for batch containers (or one for both).

    ``first_fit``: the first node (in creation order) with room. ``best_fit``: bin-packing, the
    node left with the fewest free cores, then the least free memory. ``spread``: the least
    allocated node (highest mean free share of cores and memory after placing).
    """

    online: Strategy = "spread"
    batch: Strategy = "best_fit"


class ClusterAutoscaling(Strict):
    """Add nodes when online instances are pending; remove nodes empty for ``scale_down_idle_s``
    (Kubernetes cluster-autoscaler's scale-down-unneeded-time default: 10 min). Node counts stay
    within each type's ``min``..``max``; a new node is ready after its type's ``provision_s``."""

    enabled: bool = False
    scale_down_idle_s: Duration = 600.0


def _autoscaling_before(value: Any) -> Any:
    return {"enabled": value} if isinstance(value, bool) else value


def _check_node_types(value: tuple[NodeType, ...]) -> tuple[NodeType, ...]:
    # Checked here, not with min_length: pydantic adds a spurious "too short" error to a
    # tuple whose items failed.
    if not value:
        raise ValueError("give at least one node type")
    seen: set[str] = set()
    problems: list[tuple[Loc, str]] = []
    for i, node_type in enumerate(value):
        if node_type.name in seen:
            problems.append(((i, "name"), f"node type '{node_type.name}' is defined twice"))
        seen.add(node_type.name)
    if problems:
        raise field_errors(problems)
    return value


NodeTypes = Annotated[tuple[NodeType, ...], AfterValidator(_check_node_types)]
PlacementSpec = Annotated[Placement, BeforeValidator(_both, json_schema_input_type=str | Placement)]
AutoscalingSpec = Annotated[
    ClusterAutoscaling,
    BeforeValidator(_autoscaling_before, json_schema_input_type=bool | ClusterAutoscaling),
]


class ClusterVariant(Strict):
    """One named variant of the cluster: the keys it gives replace the section's (the batch
    workload stays the same, so that variants are compared on the same work)."""

    node_types: NodeTypes | None = None
    policy: PolicySpec | None = None
    placement: PlacementSpec | None = None
    cluster_autoscaling: AutoscalingSpec | None = None
    interference: Interference | None = None


class ClusterSection(Strict):
    """The whole ``cluster:`` section of a scenario."""

    node_types: NodeTypes
    policy: PolicySpec = ColocatedPolicy(name="colocated")
    placement: PlacementSpec = Placement()
    cluster_autoscaling: AutoscalingSpec = ClusterAutoscaling()
    interference: Interference = Interference()
    batch: BatchWorkload | None = None
    variants: dict[str, ClusterVariant] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, value: dict[str, ClusterVariant]) -> dict[str, ClusterVariant]:
        bad = [name for name in value if not _NAME.match(name)]
        if bad:
            raise field_errors([((name,), "expected letters, digits, '.', '_' or '-'")
                                for name in bad])
        return value

    def node_type(self, name: str) -> NodeType:
        """The node type called ``name`` (``KeyError`` if there is none)."""
        for node_type in self.node_types:
            if node_type.name == name:
                return node_type
        raise KeyError(name)

    def variant(self, name: str | None) -> ClusterSection:
        """The section as variant ``name`` sees it (itself for None), without variants.
        Raises ``KeyError`` naming the known variants (and the closest one) otherwise."""
        if name is None:
            return self
        if name not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise KeyError(f"unknown cluster variant '{name}'"
                           f"{suggest(name, list(self.variants))}; variants: {known}")
        chosen = self.variants[name]
        update = {key: getattr(chosen, key) for key in chosen.model_fields_set}
        return self.model_copy(update={**update, "variants": {}})


class HasResources(Protocol):
    """What ``check_cluster`` needs of a service: ``resources.cores`` and ``.memory_gb``."""

    @property
    def resources(self) -> Any: ...


def check_cluster(
    section: ClusterSection, services: Mapping[str, HasResources]
) -> list[tuple[Loc, str]]:
    """Problems that need the scenario's services, as (path from the scenario root, message).

    Reported, for the section and for each of its variants: a dedicated pool naming an unknown
    node type or more nodes than the type has; a pool (or the whole cluster) that has no nodes
    and cannot get any; a service instance or a generated batch container no node of its pool
    can hold; cluster autoscaling switched on while no node type may change its count.
    """
    base = _check_one(section, services)
    problems = list(base)
    for name, variant in section.variants.items():
        for path, message in _check_one(section.variant(name), services):
            if path[0] == "cluster" and len(path) > 1 and path[1] in variant.model_fields_set:
                path = ("cluster", "variants", name, *path[1:])
            elif (path, message) in base:
                continue  # the section's own problem, already reported
            else:
                message = f"with cluster variant '{name}': {message}"
            problems.append((path, message))
    return problems


def _check_one(
    section: ClusterSection, services: Mapping[str, HasResources]
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    types = section.node_types
    names = [t.name for t in types]
    policy = section.policy
    online_types, batch_types = list(types), list(types)
    if isinstance(policy, DedicatedPolicy):
        for name, share in policy.online.items():
            path: Loc = ("cluster", "policy", "online", name)
            if name not in names:
                problems.append((path, f"unknown node type '{name}'{suggest(name, names)}; "
                                 f"node types: {', '.join(names)}"))
            elif isinstance(share, int) and share > section.node_type(name).count:
                problems.append((path, f"{share} online nodes, but node type '{name}' has only "
                                 f"count {section.node_type(name).count}"))
        online_types = [t for t in types if t.name in policy.online]
        batch_types = [t for t in types if policy.online.get(t.name) != "all"]
    scaling = section.cluster_autoscaling.enabled
    if all(t.count == 0 for t in types) and not (scaling and any(t.max_count for t in types)):
        problems.append((("cluster", "node_types"), "the cluster has no nodes: give a node type "
                         "a count >= 1 (or max >= 1 with cluster_autoscaling on)"))
    elif isinstance(policy, DedicatedPolicy):
        problems += _pool_problems(policy, online_types, batch_types, section, scaling)
    problems += _size_problems(section, services, online_types, batch_types)
    if scaling and all(t.min_count == t.count == t.max_count for t in types):
        problems.append((("cluster", "cluster_autoscaling"), "is on, but every node type has "
                         "min = count = max; give a node type a max above its count"))
    return problems


def _pool_problems(
    policy: DedicatedPolicy, online: list[NodeType], batch: list[NodeType],
    section: ClusterSection, scaling: bool,
) -> list[tuple[Loc, str]]:
    online_nodes = sum(policy.online_nodes(t) for t in online)
    batch_nodes = sum(t.count - policy.online_nodes(t) for t in batch)
    problems: list[tuple[Loc, str]] = []
    if online_nodes == 0 and not (scaling and any(t.max_count for t in online)):
        problems.append((("cluster", "policy", "online"), "the online pool has no nodes"))
    if section.batch is not None and batch_nodes == 0:
        problems.append((("cluster", "policy", "online"), "the batch pool has no nodes (every "
                         "node serves online), but the scenario has a batch workload"))
    return problems


def _size_problems(
    section: ClusterSection, services: Mapping[str, HasResources],
    online: list[NodeType], batch: list[NodeType],
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for name, service in services.items():
        cores, memory_gb = service.resources.cores, service.resources.memory_gb
        if online and not any(t.cores >= cores and t.memory_gb >= memory_gb for t in online):
            problems.append((("services", name, "resources"), _too_big(
                f"an instance of '{name}'", cores, memory_gb, online)))
    generator = section.batch.generator if section.batch is not None else None
    if generator is not None and batch:
        cores = generator.cores.upper_bound()
        memory_gb = generator.memory_gb_for(cores)
        if cores is not None and not any(
            t.cores >= cores and t.memory_gb >= memory_gb for t in batch
        ):
            problems.append((("cluster", "batch", "generator", "cores"), _too_big(
                "the largest batch container", cores, memory_gb, batch)))
    return problems


def _too_big(what: str, cores: float, memory_gb: float, types: list[NodeType]) -> str:
    sizes = ", ".join(f"'{t.name}' {t.cores:g} cores / {t.memory_gb:g} GB" for t in types)
    return f"{what} requests {cores:g} cores / {memory_gb:g} GB; no node can hold it ({sizes})"
