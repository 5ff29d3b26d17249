"""`livecomp eval` and `export`: a trained run scored, and written as a model folder that
`listen` plays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from .common import _engine, app, fail
from .training import WITH_HELP, _need_training_extra


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A run folder (its best.pt), a checkpoint file, or an exported model "
                                                "folder."),
    data: Optional[str] = typer.Option(None, "--data",
                                       help="Benchmark name, MIDI folder or JSON file (default: the training "
                                            "data)."),
    split: str = typer.Option("test", "--split", help="train | valid | test"),
    model: Optional[str] = typer.Option(None, "--model", help="Expect this architecture (basic | endecell)."),
    device: str = typer.Option("auto", "--device",
                               help="Checkpoints: auto | cpu | cuda. Exported folders: auto | cpu | cuda (the "
                                    "onnxruntime provider)."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    mix_shifts: Optional[int] = typer.Option(None, "--mix-shifts", min=0, max=12,
                                             help="Basic checkpoints: score the weights as a mixture of copies "
                                                  "transposed by -N..N semitones (default: as trained)."),
    ensemble: Optional[List[Path]] = typer.Option(None, "--with", help=WITH_HELP),
) -> None:
    """Score a checkpoint or an exported model: NLL per frame (nats) and frame accuracy on a split."""
    from livecomp_train.data import CorpusError
    from livecomp_train.scoring import EvalError, score_checkpoint, score_folder

    from ..model.folder import ModelError

    try:
        if (checkpoint / "model.json").is_file():
            if mix_shifts is not None or ensemble:
                fail(f"{checkpoint} is an exported model, whose mixture was fixed when it was exported: "
                     f"{'--with' if ensemble else '--mix-shifts'} takes a checkpoint.")
            engine = _engine(checkpoint, "auto" if device == "auto" else device, job="batch")
            result, note = score_folder(engine, data, split, model)
        else:
            _need_training_extra()
            from livecomp_train.checkpoint import CheckpointError
            from livecomp_train.train import TrainingError
            try:
                result, note = score_checkpoint(checkpoint, data, split, model, device, mix_shifts, ensemble or [])
            except (CheckpointError, TrainingError) as exc:
                fail(str(exc))
    except (EvalError, CorpusError, ModelError) as exc:
        fail(str(exc))
    if note:
        typer.echo(f"note: {note}", err=True)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"{result['architecture']}" + (f" (mean of {result['runs']} runs)" if "runs" in result else "")
               + f" on {result['data']} {split}: {result['sequences']} sequences, "
               f"{result['frames']} frames" + (f" (onnxruntime, {result['provider']})" if "provider" in result else ""))
    typer.echo(f"NLL per frame          {result['nll']:.4f} nats (every frame; the first from the zero state)")
    typer.echo(f"NLL per frame, t > 0   {result['nll_after_first']:.4f} nats (first frame of each sequence left out)")
    if result["accuracy"] is not None and result["accuracy"] == result["accuracy"]:   # not None or NaN
        typer.echo(f"frame accuracy         {result['accuracy']:.4f}")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A run folder (its best.pt) or a checkpoint file."),
    out: Path = typer.Option(..., "--out",
                             help="The model folder to write (replaced only once the new one has checked itself)."),
    name: Optional[str] = typer.Option(None, "--name",
                                       help="The model's name in model.json (default: the folder's name)."),
    corpus_licence: Optional[str] = typer.Option(None, "--corpus-licence",
                                                 help="The training data's licence, for the model's card."),
    data: Optional[str] = typer.Option(None, "--data",
                                       help="Where the training corpus is now (default: the path the run was "
                                            "trained with)."),
    mix_shifts: Optional[int] = typer.Option(None, "--mix-shifts", min=0, max=12,
                                             help="Basic: export the weights as a mixture of copies transposed by "
                                                  "-N..N semitones (default: as trained)."),
    ensemble: Optional[List[Path]] = typer.Option(None, "--with", help=WITH_HELP),
    candidates: Optional[int] = typer.Option(None, "--candidates", min=1, max=64,
                                             help="The candidate bars listen and duet sample per answer bar with "
                                                  "this model unless told (default: 16); bench/latency.py measures "
                                                  "the cost."),
) -> None:
    """Export a trained checkpoint as ONNX graphs with the bar-level predictor, checked against torch."""
    _need_training_extra()
    from livecomp_train.checkpoint import CheckpointError
    from livecomp_train.data import CorpusError
    from livecomp_train.export import ExportError
    from livecomp_train.export import export as run_export

    try:
        info = run_export(checkpoint, out, name=name, progress=typer.echo, corpus_licence=corpus_licence, data=data,
                          mix_shifts=mix_shifts, ensemble=ensemble or [], candidates=candidates)
    except (CheckpointError, CorpusError, ExportError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}.")
    checks = info["checks"]
    typer.echo(f"validation NLL: torch {checks['valid_nll_torch']:.6f}, onnxruntime {checks['valid_nll_onnx']:.6f}; "
               f"{checks['bars_equal_to_torch']} sampled bars equal to torch's")
    for dataset, m in info["metrics"].items():
        typer.echo(f"{dataset} {m['split']} NLL {m['nll']:.4f} nats/frame")
    typer.echo(f"wrote {out}")
