"""Rendering deploy/kubernetes/ the way `kubectl kustomize` does, for the subset it uses.

Why a renderer here: `make test` must not need kubectl (not a PyPI package), and the one Python
kustomize binding needs a newer Python than ours. The manifests use only ``resources`` (files
and folders), ``namespace`` and ``replicas``; anything else in a kustomization fails here with
its name, so the layout cannot drift beyond what this proves. When kubectl is installed,
tests/deploy/test_kubernetes.py checks that both renderings are the same objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "replicas"}
CLUSTER_SCOPED = {"Namespace"}
# kinds whose spec.replicas the `replicas:` field sets (as kustomize does)
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}


class KustomizeError(ValueError):
    pass


def render(folder: Path) -> list[dict[str, Any]]:
    """Every object of the kustomization in ``folder``, with its transformations applied."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{folder}: kustomization fields not supported here: {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    if "namespace" in spec:
        _set_namespace(objects, spec["namespace"])
    for item in spec.get("replicas", []):
        _set_replicas(objects, item["name"], int(item["count"]), folder)
    return objects


def _set_namespace(objects: list[dict[str, Any]], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED:
            if obj["kind"] == "Namespace" and obj["metadata"]["name"] != namespace:
                raise KustomizeError(f"Namespace {obj['metadata']['name']} is not {namespace}")
            continue
        obj["metadata"]["namespace"] = namespace


def _set_replicas(objects: list[dict[str, Any]], name: str, count: int, folder: Path) -> None:
    hits = [o for o in objects if o["kind"] in SCALABLE and o["metadata"]["name"] == name]
    if not hits:
        raise KustomizeError(f"{folder}: replicas names {name!r}, which no workload is called")
    for obj in hits:
        obj["spec"]["replicas"] = count


def by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects keyed by (kind, name); a duplicate is an error (kustomize refuses it too)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in out:
            raise KustomizeError(f"duplicate {key}")
        out[key] = obj
    return out
