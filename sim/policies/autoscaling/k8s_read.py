"""Read the manifests of a ``kubernetes`` autoscaling variant and map them to services.

Each file may hold several YAML documents (``---``); every document must be an
``autoscaling/v2`` HorizontalPodAutoscaler or a KEDA ``ScaledObject``. Each autoscaler's
``scaleTargetRef.name`` is mapped to a service: through the variant's ``services``
(service -> target name), else a service of the same name. Problems (unreadable file, invalid
manifest, unmappable metric or trigger, a target that matches no service, two autoscalers on
one target) are collected over every file and raised as one ``ScenarioError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

import yaml

from sim.errors import Problem, ScenarioError
from sim.policies.autoscaling.k8s_common import Reader, TargetScaler, read_documents
from sim.policies.autoscaling.k8s_hpa import hpa_scaler
from sim.policies.autoscaling.k8s_keda import keda_scaler


def read_scalers(
    files: Iterable[str], base_dir: str, services: Iterable[str],
    targets: Mapping[str, str], metrics: Mapping[str, tuple[str, float]],
    start_time: datetime | None, dated: bool,
) -> dict[str, TargetScaler]:
    """Service -> its autoscaler, from the manifest ``files`` (relative to ``base_dir``).

    ``targets`` maps service -> ``scaleTargetRef.name`` (default: the service's own name);
    ``metrics`` maps manifest metric names to (peaksim metric, scale). ``start_time`` is the
    scenario's t=0 (None without a start clock: cron triggers cannot be placed); ``dated``
    says whether it has a real calendar date (otherwise crons must not name days or months).
    Raises ``ScenarioError`` listing every problem.
    """
    by_target = {targets.get(name, name): name for name in services}
    problems: list[Problem] = []
    scalers: dict[str, TargetScaler] = {}
    for file in files:
        path = Path(base_dir) / file
        try:
            documents = read_documents(path)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(file, "", f"cannot read manifest: {exc}"))
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.append(Problem(file, "", f"YAML syntax error: "
                                    f"{getattr(exc, 'problem', None) or exc}",
                                    mark.line + 1 if mark is not None else None))
            continue
        if not documents:
            problems.append(Problem(file, "", "no manifest in the file"))
        for doc, lines in documents:
            reader = Reader(file, lines)
            scaler = _scaler(doc, reader, metrics)
            if scaler is not None:
                _place(scaler, reader, by_target, scalers)
                _check_crons(scaler, reader, start_time, dated)
            problems += reader.problems
    if problems:
        raise ScenarioError(problems)
    return scalers




def _scaler(doc: object, reader: Reader,
            metrics: Mapping[str, tuple[str, float]]) -> TargetScaler | None:
    if not isinstance(doc, dict):
        reader.add([], "expected a Kubernetes object (a mapping with apiVersion and kind)")
        return None
    kind = doc.get("kind")
    if kind == "HorizontalPodAutoscaler":
        return hpa_scaler(doc, reader, metrics)
    if kind == "ScaledObject":
        return keda_scaler(doc, reader, metrics)
    reader.add(["kind"], f"expected HorizontalPodAutoscaler (autoscaling/v2) or ScaledObject "
               f"(keda.sh/v1alpha1), got {kind!r}")
    return None


def _place(scaler: TargetScaler, reader: Reader, by_target: Mapping[str, str],
           scalers: dict[str, TargetScaler]) -> None:
    service = by_target.get(scaler.target)
    ref = ["spec", "scaleTargetRef", "name"]
    if service is None:
        known = ", ".join(f"{t} ({s})" if t != s else t for t, s in sorted(by_target.items()))
        reader.add(ref, f"scaleTargetRef '{scaler.target}' matches no service (targets: "
                   f"{known}); map it under the variant's 'services' (service: target)")
        return
    other = scalers.get(service)
    if other is not None:
        reader.add(ref, f"'{scaler.target}' is already scaled by {other.kind} '{other.name}' "
                   f"({other.file}); Kubernetes lets one autoscaler own a workload (KEDA "
                   f"refuses a target an HPA already scales)")
        return
    scalers[service] = scaler


def _check_crons(scaler: TargetScaler, reader: Reader, start_time: datetime | None,
                 dated: bool) -> None:
    for cron in scaler.crons:
        keys = list(cron.path)
        if start_time is None:
            reader.add(keys, "a cron trigger needs the scenario's start_clock (and timezone, "
                       "start_date) to place its times")
        elif not dated and any(f != "*" for e in (cron.start, cron.end)
                               for f in e.split()[2:]):
            reader.add(keys, "a cron trigger naming days or months needs the scenario's "
                       "start_date")
