"""The model registry reads storage that others can write (a stolen key, an operator's typo): what it reads
decides which model scores every profile, so a forged approval, a pointer reaching outside its folder
or a corrupt record is refused, naming the file, and never puts a model in force."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.storage.artifacts import ArtifactStore
from consumer_assets.storage.filesystem import Location, resolve
from consumer_assets.storage.registry import InvalidApprovalError, ModelRegistry
from consumer_assets.storage.validate import InvalidRecordError

D = dt.date(2026, 4, 20)
NAME = "trained_lstm_model"
TINY = LstmConfig(type_dim=4, article_dim=2, brand_dim=2, category_dim=2, hidden=8)
PASSED = {
    "auc_above_floor": {"passed": True, "reason": "validation AUC 0.8000 above the floor 0.65"},
    "auc_not_below_baseline": {"passed": True, "reason": "AUC 0.8000 vs 0.7900 of the logistic baseline"},
}


def model_files(seed: int) -> dict[str, bytes]:
    import torch

    torch.manual_seed(seed)
    return ModelArtifact(EventLstm(TINY)).to_files()


def raw_write(location: Location, relative: str, body: bytes) -> str:
    """Write straight into storage, as anyone with the key can; the file's URI."""
    if location.is_local:
        location.fs.create_dir(location.path(*relative.split("/")[:-1]), recursive=True)
    with location.fs.open_output_stream(location.path(relative)) as out:
        out.write(body)
    return f"{location.uri}/{relative}"


def registry_at(root: str) -> ModelRegistry:
    return ModelRegistry(ArtifactStore(resolve(root)), NAME)


def approved_and_not(registry: ModelRegistry) -> tuple[Any, Any]:
    """Version 1 of D approved the proper way, version 2 of D published and never approved."""
    first = registry.publish(D, model_files(1), {})
    registry.approve(first, PASSED, {"tolerances": {"auc_floor": 0.65}})
    second = registry.publish(D, model_files(2), {})
    return first, second


def test_an_approval_names_the_checksum_and_the_checks_that_passed(local_root: str) -> None:
    registry = registry_at(local_root)
    first, second = approved_and_not(registry)
    (record,) = registry.approvals.records()
    assert record["checksum"] == first.checksum != second.checksum
    assert record["checks"] == PASSED and record["details"] == {"tolerances": {"auc_floor": 0.65}}
    assert (record["partition"], record["version"]) == (D.isoformat(), 1)
    in_force = registry.require_in_force(D)
    assert in_force.version == first and in_force.checks == PASSED
    # What the registry writes it also refuses to write: no approval without checks, or with one failed.
    with pytest.raises(ValueError, match="no checks"):
        registry.approve(second, {})
    failed = {**PASSED, "auc_above_floor": {"passed": False, "reason": "AUC 0.5 not above the floor 0.65"}}
    with pytest.raises(ValueError, match=r"auc_above_floor did not pass"):
        registry.approve(second, failed)
    assert len(registry.approvals.records()) == 1


def forged(**fields: Any) -> bytes:
    return json.dumps({"partition": D.isoformat(), "version": 2, "approved_at": "2026-04-21T00:00:00+00:00",
                       "number": 2, **fields}).encode()  # fmt: skip


def test_a_forged_approval_never_puts_a_model_in_force(storage_root: str) -> None:
    registry = registry_at(storage_root)
    first, second = approved_and_not(registry)
    copy = registry.publish(D, registry.load(first), {})  # version 3: the same bytes as the approved one
    approvals = registry.approvals.location
    cases = [
        # The old record format, or a hand-written one: no checksum, no checks.
        ("no checksum", forged(reason={})),
        # Copied from the approval of version 1: its checksum is not version 2's.
        ("checksum", forged(checksum=first.checksum, checks=PASSED)),
        # Version 1's approval copied onto version 3, which holds the very same files.
        ("checksum", forged(version=copy.number, checksum=first.checksum, checks=PASSED)),
        # The right checksum, but nothing passed or one check failed.
        ("no checks", forged(checksum=second.checksum, checks={})),
        (
            "auc_above_floor did not pass",
            forged(checksum=second.checksum, checks={**PASSED, "auc_above_floor": {"passed": False, "reason": "0.5"}}),
        ),
        ("passed must be true", forged(checksum=second.checksum, checks={"auc_above_floor": {"passed": "yes"}})),
        # A version that was never published, and a partition that is no day.
        ("never published", forged(version=7, checksum=second.checksum, checks=PASSED)),
        ("partition", forged(partition="../../x", checksum=second.checksum, checks=PASSED)),
    ]
    for expected, body in cases:
        uri = raw_write(approvals, "00002.json", body)
        for ask in (registry.in_force, registry.require_in_force):
            with pytest.raises(InvalidApprovalError) as refused:
                ask(D)
            assert uri in str(refused.value) and expected in str(refused.value), str(refused.value)
    approvals.fs.delete_file(approvals.path("00002.json"))
    assert registry.require_in_force(D).version == first


def test_a_pointer_reaches_no_file_outside_its_own_folder(local_root: str, tmp_path: Path) -> None:
    registry = registry_at(local_root)
    first, _ = approved_and_not(registry)
    artifacts, location = registry.artifacts, registry.artifacts.location
    # Files outside the storage root that a forged pointer would like to be read as a model.
    outside = tmp_path / "outside"
    outside.mkdir()
    for name, data in registry.load(first).items():
        (outside / name).write_bytes(data)
    pointer = json.loads(Path(location.path(NAME, f"date={D}", "_versions", "00001.json")).read_text())
    pointer["number"] = 3  # as if it had been published as version 3
    depth = len(Path(location.path(NAME, f"date={D}")).relative_to(tmp_path).parts)
    up = "/".join([".."] * depth)
    files = pointer["files"]
    bad = {
        "folder": [{"folder": f"{up}/outside"}, {"folder": ".."}, {"folder": ""}, {"folder": str(outside)},
                   {"folder": "a\\..\\.."}, {"folder": 7}],
        "file name": [{"files": {f"{up}/outside/{n}": v for n, v in files.items()}},
                      {"files": {**files, "/etc/hostname": files["config.json"]}},
                      {"files": {"": files["config.json"]}}],
        "sha256": [{"files": {n: {"sha256": "x", "size": 1} for n in files}}],
        "partition": [{"partition": "2026-04-21"}],
        "name": [{"name": "other_model"}],
        "number": [{"number": 1}],
    }  # fmt: skip
    third = f"{NAME}/date={D}/_versions/00003.json"
    for expected, changes in bad.items():
        for change in changes:
            uri = raw_write(location, third, json.dumps({**pointer, **change}).encode())
            with pytest.raises(InvalidRecordError) as refused:
                artifacts.get(NAME, D.isoformat(), 3)
            assert uri in str(refused.value) and expected in str(refused.value), (change, str(refused.value))

    # A folder that is a link out of the storage root: the names are plain, where they lead is not.
    (Path(location.path(NAME, f"date={D}")) / "linked").symlink_to(outside, target_is_directory=True)
    raw_write(location, third, json.dumps({**pointer, "folder": "linked"}).encode())
    linked = artifacts.get(NAME, D.isoformat(), 3)
    with pytest.raises(InvalidRecordError, match=r"outside .*date=2026-04-20"):
        artifacts.load(linked)


def test_corrupt_records_are_refused_naming_the_file(storage_root: str) -> None:
    registry = registry_at(storage_root)
    approved_and_not(registry)
    location = registry.artifacts.location
    for body, expected in ((b'{"partition": "2026-04', "not valid JSON"), (b"[1, 2]", "not a JSON object"),
                           (b"\xff\xfe", "not valid JSON")):  # fmt: skip
        uri = raw_write(registry.approvals.location, "00001.json", body)
        with pytest.raises(InvalidRecordError) as refused:
            registry.in_force(D)
        assert uri in str(refused.value) and expected in str(refused.value)
        uri = raw_write(location, f"{NAME}/date={D}/_versions/00002.json", body)
        with pytest.raises(InvalidRecordError) as refused:
            registry.artifacts.latest(NAME, D.isoformat())
        assert uri in str(refused.value) and expected in str(refused.value)
