"""`rancherlab schema --format typescript`: declarations that `tsc --strict` compiles and that make a client
check what is not always there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rancherlab.analysis import frame, load, schema
from rancherlab.analysis._typescript import interface_name, typescript

from ._node import ensure_tsc
from .conftest import EventLog

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "recordings" / "samples"


def _pod(name: str, **extra: object) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "default", "resourceVersion": "1"}
    meta.update(extra)
    return {"id": f"default/{name}", "type": "pod", "metadata": meta, "spec": {"replicas": 1}}


def _declarations(*objects: dict[str, object]) -> str:
    log = EventLog()
    for obj in objects:
        log.steve(obj)
    return typescript(schema(frame(log.events)))


def test_a_field_in_every_object_is_required_and_one_in_some_is_optional() -> None:
    ts = _declarations(_pod("a", deletionTimestamp="2024-05-01T12:00:00Z"), _pod("b"))
    assert "export interface StevePod {" in ts
    assert "\n    name: string;" in ts  # metadata.name: in both
    assert "\n    deletionTimestamp?: string;" in ts  # in one of two
    assert '\n  type: "pod";' in ts  # a literal, so `data.type === "pod"` narrows the union
    assert "in 1 of 2 occurrences of its parent" in ts


def test_a_field_whose_json_type_varied_is_a_union() -> None:
    a, b = _pod("a"), _pod("b")
    b["spec"] = {"replicas": "1"}
    ts = _declarations(a, b)
    assert "replicas: number | string;" in ts


def test_names_are_typescript_identifiers() -> None:
    assert interface_name("steve", "apps.deployment") == "SteveAppsDeployment"
    assert interface_name("norman", "namespacedSecret") == "NormanNamespacedSecret"
    assert interface_name("steve", "management.cattle.io.cluster") == "SteveManagementCattleIoCluster"
    assert interface_name("steve", "3d") == "SteveT3d"


PROGRAM = """
import type { NormanEvent, SteveEvent, StevePod } from "./events";

export function onSteve(ev: SteveEvent): string {
  switch (ev.name) {
    case "resource.create":
    case "resource.change":
    case "resource.remove":
      if (ev.data.type === "pod") {
        const pod: StevePod = ev.data;
        const where: string = pod.metadata.namespace + "/" + pod.metadata.name;
        const gone = pod.metadata.deletionTimestamp;
        return (ev.revision ?? "") + where + (gone !== undefined ? " terminating since " + gone : "");
      }
      return ev.data.type;
    case "resource.error":
      return ev.data.error;
    case "ping":
      return ev.data.version ?? "";
    default:
      return ev.resourceType ?? ev.name;
  }
}

export function onNorman(ev: NormanEvent): string {
  return ev.name === "ping" ? "ping" : ev.data.type;
}
"""

UNCHECKED = """
import type { StevePod } from "./events";
export function terminating(pod: StevePod): string {
  const since: string = pod.metadata.deletionTimestamp;
  return since;
}
"""


@pytest.fixture(scope="module")
def declarations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`rancherlab schema --format typescript` of the committed sample recordings (both dialects)."""
    out = tmp_path_factory.mktemp("ts") / "events.ts"
    files = sorted(str(p) for p in SAMPLES.glob("*.jsonl"))
    done = subprocess.run(
        [sys.executable, "-m", "rancherlab", "schema", "--format", "typescript", "--out", str(out), *files],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


def _tsc(folder: Path, main: str) -> subprocess.CompletedProcess[str]:
    (folder / "main.ts").write_text(main, encoding="utf-8")
    return subprocess.run(
        [*ensure_tsc(), "--strict", "--noEmit", "--target", "es2020", "--module", "es2020", "main.ts"],
        check=False,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(900)  # the first run installs TypeScript (and node, where missing)
def test_tsc_strict_compiles_a_client_that_narrows_on_name(declarations: Path) -> None:
    text = declarations.read_text(encoding="utf-8")
    for name in ("NormanEvent", "SteveEvent", "StevePod", "NormanPod", "SteveWatchKey"):
        assert f" {name} " in text
    done = _tsc(declarations.parent, PROGRAM)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(900)
def test_tsc_strict_refuses_an_optional_field_used_unchecked(declarations: Path) -> None:
    done = _tsc(declarations.parent, UNCHECKED)
    assert done.returncode != 0
    assert "main.ts(4," in done.stdout and "undefined" in done.stdout, done.stdout


def test_every_sample_type_has_an_interface() -> None:
    df = load(SAMPLES / "steve-cluster.jsonl")
    ts = typescript(schema(df))
    for typ in set(df["type"].dropna().astype(str)) - {""}:
        if (df["type"] == typ).any() and typ in set(schema(df)["type"].astype(str)):
            assert f"export interface {interface_name('steve', typ)} " in ts
