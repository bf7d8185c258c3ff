"""Training in several processes: torchrun starts them, each takes its share of every batch's rows.

`train_in_processes` runs train.train data-parallel: it writes what the processes need into a
folder (the streams' file URIs, cut-off days and profile-hash cuts as JSON, the label windows'
buyers as Parquet, the initial weights as a model artifact: never a pickle), then runs

    python -m torch.distributed.run --standalone --nproc-per-node N -m consumer_assets.ml.training.distributed DIR

and reads back rank 0's weights and epochs. Each process reads the histories from their files
itself (S3 settings come from the standard AWS variables, as for Spark's executors). On CPU the
processes average their gradients through gloo, one torch thread each; with GPUs through NCCL,
one GPU a process (torchrun's LOCAL_RANK): the same launch runs in a Kubernetes pod with several
GPUs, `nproc-per-node` = its GPUs (docs/deploy).

Rank 0 prints one JSON line per epoch as it ends, which the caller turns into on_epoch calls, so
a long training shows its progress where a single-process one would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch
import torch.distributed as dist

from consumer_assets.histories.reader import open_path
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.model.device import torch_threads
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.training.stream import Cut, FilePart, HistoryStream
from consumer_assets.ml.training.train import EpochStats, TrainResult, train

EPOCH_LINE = "consumer-assets-epoch "


def train_in_processes(
    config: LstmConfig,
    train_data: HistoryStream,
    valid_data: HistoryStream | None = None,
    *,
    processes: int,
    init: EventLstm | None = None,
    threads: int = 1,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """train.train on `processes` processes (torchrun on this machine); the same result fields."""
    if processes < 2:
        raise ValueError(f"processes must be at least 2, got {processes}")
    with tempfile.TemporaryDirectory(prefix="consumer-assets-training-") as tmp:
        folder = Path(tmp)
        spec = {
            "config": config.to_dict(),
            "train": _stream_spec(train_data),
            "valid": _stream_spec(valid_data) if valid_data is not None else None,
            "threads": threads,
            "warm": init is not None,
        }
        pq.write_table(train_data.buyers, folder / "buyers.parquet")
        if init is not None:
            for name, data in ModelArtifact(init, {}).to_files().items():
                (folder / f"init-{name}").write_bytes(data)
        (folder / "spec.json").write_text(json.dumps(spec))
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={processes}",
            "-m",
            __name__,
            str(folder),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as launched:
            assert launched.stdout is not None
            for line in launched.stdout:
                if line.startswith(EPOCH_LINE) and on_epoch is not None:
                    on_epoch(EpochStats(**json.loads(line[len(EPOCH_LINE) :])))
        if launched.returncode:
            raise RuntimeError(f"training in {processes} processes failed (torchrun exit {launched.returncode})")
        outcome = json.loads((folder / "result.json").read_text())
        files = {name: (folder / f"result-{name}").read_bytes() for name in outcome.pop("files")}
        model = ModelArtifact.from_files(files).model
    return TrainResult(model=model, epochs=[EpochStats(**e) for e in outcome.pop("epochs")], **outcome)


def _stream_spec(stream: HistoryStream) -> dict[str, Any]:
    parts = []
    for part in stream.parts:
        if not isinstance(part, FilePart):
            raise ValueError("training in several processes reads the histories from their files, not from memory")
        parts.append({"uri": _uri(part.filesystem, part.path), "day": part.day.isoformat()})
    return {
        "parts": parts,
        "days": sorted(stream.days) if stream.days is not None else None,
        "cuts": [
            {
                "salt": c.salt,
                "shares": c.shares if isinstance(c.shares, float) else {str(d): s for d, s in c.shares.items()},
                "held": c.held,
            }
            for c in stream.cuts
        ],
        "cutoff_column": stream.cutoff_column,
    }


def _uri(filesystem: pafs.FileSystem, path: str) -> str:
    if isinstance(filesystem, pafs.LocalFileSystem):
        return Path(path).resolve().as_uri()
    if isinstance(filesystem, pafs.S3FileSystem):
        return f"s3://{path}"
    raise ValueError(f"cannot hand files of a {filesystem.type_name} filesystem to other processes")


def _stream(spec: dict[str, Any], buyers: pa.Table) -> HistoryStream:
    parts = []
    for part in spec["parts"]:
        fs, path = open_path(part["uri"])
        parts.append(FilePart(fs, path, dt.date.fromisoformat(part["day"])))
    cuts = tuple(
        Cut(
            c["salt"],
            c["shares"] if isinstance(c["shares"], float) else {int(d): s for d, s in c["shares"].items()},
            c["held"],
        )
        for c in spec["cuts"]
    )
    days = frozenset(spec["days"]) if spec["days"] is not None else None
    return HistoryStream(tuple(parts), buyers, days, cuts, spec["cutoff_column"])


def _worker(folder: Path) -> None:
    """One process of train_in_processes, under torchrun."""
    spec = json.loads((folder / "spec.json").read_text())
    on_gpu = torch.cuda.is_available()
    dist.init_process_group("nccl" if on_gpu else "gloo")
    try:
        rank = dist.get_rank()
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if on_gpu else torch.device("cpu")
        if on_gpu:
            torch.cuda.set_device(device)
        buyers = pq.read_table(folder / "buyers.parquet")
        config = LstmConfig.from_dict(spec["config"])
        init = None
        if spec["warm"]:
            names = [p.name.removeprefix("init-") for p in folder.glob("init-*")]
            init = ModelArtifact.from_files({n: (folder / f"init-{n}").read_bytes() for n in names}).model
        train_data = _stream(spec["train"], buyers)
        valid = _stream(spec["valid"], buyers) if spec["valid"] is not None else None

        def report(stats: EpochStats) -> None:
            if rank == 0:
                print(EPOCH_LINE + json.dumps(stats.as_dict()), flush=True)

        with torch_threads(spec["threads"]):
            result = train(config, train_data, valid, init=init, device=device, on_epoch=report)
        if rank == 0:
            files = ModelArtifact(result.model.cpu(), {}).to_files()
            for name, data in files.items():
                (folder / f"result-{name}").write_bytes(data)
            fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "model"}
            fields["epochs"] = [e.as_dict() for e in result.epochs]
            (folder / "result.json").write_text(json.dumps({**fields, "files": sorted(files)}))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
