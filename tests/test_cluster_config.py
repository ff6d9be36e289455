"""The cluster section: schema errors at the right field, and ``check_cluster``'s checks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from sim.model import ClusterSection, check_cluster

NODE = {"name": "std", "cores": 32, "memory_gb": 128, "count": 4}


def errors(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        ClusterSection.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def services(**sizes: tuple[float, float]) -> dict[str, Any]:
    return {name: SimpleNamespace(resources=SimpleNamespace(cores=c, memory_gb=m))
            for name, (c, m) in sizes.items()}


def test_defaults_and_shorthands() -> None:
    section = ClusterSection.model_validate({
        "node_types": [NODE], "policy": "colocated",
        "placement": "best_fit", "cluster_autoscaling": True,
    })
    assert section.policy.name == "colocated" and section.policy.preemption == "lose"
    assert (section.placement.online, section.placement.batch) == ("best_fit", "best_fit")
    assert section.cluster_autoscaling.enabled
    assert section.cluster_autoscaling.scale_down_idle_s == 600.0
    assert section.node_types[0].min_count == section.node_types[0].max_count == 4
    assert ClusterSection.model_validate({"node_types": [NODE]}).placement.online == "spread"


def test_unknown_strategy_suggests_the_closest() -> None:
    [(loc, msg)] = errors({"node_types": [NODE], "placement": {"online": "bestfit"}})
    assert loc == ("placement", "online")
    assert "unknown placement strategy 'bestfit' (did you mean 'best_fit'?)" in msg
    assert "first_fit, best_fit, spread" in msg


def test_unknown_policy_suggests_the_closest() -> None:
    [(loc, msg)] = errors({"node_types": [NODE], "policy": {"name": "colocate"}})
    assert loc == ("policy",)
    assert "unknown colocation policy 'colocate' (did you mean 'colocated'?)" in msg


def test_policy_needs_a_name_and_its_own_keys() -> None:
    assert "give the policy 'name'" in errors({"node_types": [NODE], "policy": {}})[0][1]
    [(loc, msg)] = errors({"node_types": [NODE],
                           "policy": {"name": "colocated", "premption": "lose"}})
    assert "did you mean 'preemption'" in msg


def test_node_type_bounds_and_duplicates() -> None:
    [(loc, msg)] = errors({"node_types": [{**NODE, "min": 5}]})
    assert loc == ("node_types", 0, "count") and "within min..max (5..4)" in msg
    [(loc, msg)] = errors({"node_types": [NODE, NODE]})
    assert loc == ("node_types", 1, "name") and "defined twice" in msg


def test_interference_curve_is_checked() -> None:
    found = errors({"node_types": [NODE], "interference": {"curve": [[0.9, 1.2], [0.5, 0.9]]}})
    assert (("interference", "curve", 1, 1), "an inflation factor must be >= 1, got 0.9") in found
    assert any("increasing order" in msg for _, msg in found)


def test_batch_needs_one_source_and_csv_options_only_with_csv() -> None:
    assert any("exactly one of 'generator' or 'csv'" in msg
               for _, msg in errors({"node_types": [NODE], "batch": {}}))
    gen = {"rate_per_min": 5, "duration_s": 60}
    [(loc, msg)] = errors({"node_types": [NODE],
                           "batch": {"generator": gen, "sample_fraction": 0.5}})
    assert loc == ("batch", "sample_fraction") and "csv" in msg
    [(loc, msg)] = errors({"node_types": [NODE], "batch": {
        "generator": {**gen, "cores": {"dist": "uniform", "min": 2}}}})
    assert loc == ("batch", "generator", "cores", "max") and "needs max" in msg


def test_instance_bigger_than_any_node() -> None:
    section = ClusterSection.model_validate({
        "node_types": [NODE, {"name": "mem", "cores": 8, "memory_gb": 512, "count": 1}]})
    problems = check_cluster(section, services(ok=(4, 8), order=(16, 256)))
    assert problems == [(("services", "order", "resources"),
                         "an instance of 'order' requests 16 cores / 256 GB; no node can hold "
                         "it ('std' 32 cores / 128 GB, 'mem' 8 cores / 512 GB)")]


def test_dedicated_checks_sizes_against_the_online_pool_only() -> None:
    section = ClusterSection.model_validate({
        "node_types": [NODE, {"name": "big", "cores": 96, "memory_gb": 512, "count": 2}],
        "policy": {"name": "dedicated", "online": {"std": "all"}}})
    [(path, msg)] = check_cluster(section, services(order=(48, 64)))
    assert path == ("services", "order", "resources") and "'std' 32 cores" in msg
    assert "'big'" not in msg


def test_zero_nodes() -> None:
    section = ClusterSection.model_validate({"node_types": [{**NODE, "count": 0}]})
    [(path, msg)] = check_cluster(section, services(web=(1, 1)))
    assert path == ("cluster", "node_types") and "no nodes" in msg
    growing = ClusterSection.model_validate({
        "node_types": [{**NODE, "count": 0, "max": 3}], "cluster_autoscaling": True})
    assert check_cluster(growing, services(web=(1, 1))) == []


def test_dedicated_pool_problems() -> None:
    section = ClusterSection.model_validate({
        "node_types": [NODE],
        "policy": {"name": "dedicated", "online": {"sdt": 2}}})
    [(path, msg), (path2, msg2)] = check_cluster(section, services(web=(1, 1)))
    assert path == ("cluster", "policy", "online", "sdt")
    assert "unknown node type 'sdt' (did you mean 'std'?)" in msg
    assert path2 == ("cluster", "policy", "online") and "online pool has no nodes" in msg2
    too_many = ClusterSection.model_validate({
        "node_types": [NODE], "policy": {"name": "dedicated", "online": {"std": 9}}})
    assert "only count 4" in check_cluster(too_many, services())[0][1]
    no_batch = ClusterSection.model_validate({
        "node_types": [NODE], "policy": {"name": "dedicated", "online": {"std": "all"}},
        "batch": {"generator": {"rate_per_min": 1, "duration_s": 60}}})
    assert "batch pool has no nodes" in check_cluster(no_batch, services())[0][1]


def test_generated_batch_container_bigger_than_any_node() -> None:
    section = ClusterSection.model_validate({"node_types": [NODE], "batch": {"generator": {
        "rate_per_min": 1, "duration_s": 60, "cores": {"dist": "choice", "values": [1, 40]}}}})
    [(path, msg)] = check_cluster(section, services())
    assert path == ("cluster", "batch", "generator", "cores") and "40 cores / 160 GB" in msg


def test_autoscaling_that_cannot_scale() -> None:
    section = ClusterSection.model_validate({"node_types": [NODE], "cluster_autoscaling": True})
    [(path, msg)] = check_cluster(section, services())
    assert path == ("cluster", "cluster_autoscaling") and "min = count = max" in msg


def test_variants_override_the_section() -> None:
    section = ClusterSection.model_validate({
        "node_types": [NODE], "policy": "colocated", "placement": "spread",
        "batch": {"generator": {"rate_per_min": 1, "duration_s": 60}},
        "variants": {
            "dedicated": {"policy": {"name": "dedicated", "online": {"std": 3}}},
            "colocated-packed": {"placement": "best_fit", "policy": {
                "name": "colocated", "preemption": "throttle"}},
        },
    })
    dedicated = section.variant("dedicated")
    assert dedicated.policy.name == "dedicated" and dedicated.placement.online == "spread"
    assert dedicated.batch == section.batch and dedicated.variants == {}
    packed = section.variant("colocated-packed")
    assert packed.placement.batch == "best_fit" and packed.policy.preemption == "throttle"
    assert section.variant(None) is section
    with pytest.raises(KeyError, match="did you mean 'dedicated'"):
        section.variant("dedicate")


def test_variant_problems_point_into_the_variant() -> None:
    section = ClusterSection.model_validate({
        "node_types": [NODE],
        "variants": {
            "ded": {"policy": {"name": "dedicated", "online": {"sdt": 1}}},
            "tiny": {"node_types": [{"name": "t", "cores": 2, "memory_gb": 4, "count": 2}]},
        },
    })
    problems = check_cluster(section, services(web=(4, 8)))
    paths = [path for path, _ in problems]
    assert ("cluster", "variants", "ded", "policy", "online", "sdt") in paths
    assert (("services", "web", "resources"),
            "with cluster variant 'tiny': an instance of 'web' requests 4 cores / 8 GB; no node "
            "can hold it ('t' 2 cores / 4 GB)") in problems
    with pytest.raises(ValidationError, match="policy"):
        ClusterSection.model_validate({"node_types": [NODE],
                                       "variants": {"x": {"policy": "colocate"}}})
