"""The training loop: one function, readable in one sitting.

    livecomp train --model basic --data jsb --out runs/jsb-basic --epochs 200

Runs on CPU or CUDA, single process or data-parallel under torchrun (gloo on CPU, nccl on
GPU). Validation runs every epoch on whole sequences; the best checkpoint by validation NLL is
kept; ``last.pt`` is written atomically at every epoch end and every ``checkpoint_every_s``
seconds, and ``--resume`` continues from it exactly: same data order, optimizer and RNG state.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from livecomp.files import atomic_write_bytes, finite

from .checkpoint import init_from, read_checkpoint, save_checkpoint
from .configs import TrainConfig
from .data import epoch_order, load_corpus, make_windows, transpose_batch
from .evaluate import evaluate, sample_png
from .models import build_model, config_from_dict
from .models.common import frame_log_likelihood, sample_states


class TrainingError(ValueError):
    """Settings or a run folder that training cannot use."""


def resume_config(run: Path, epochs: int | None = None, time_budget_s: float | None = None,
                  device: str | None = None) -> TrainConfig:
    """The settings of the run in folder ``run``, with a new epoch count, time budget or device if given.

    Raises:
        TrainingError: ``run`` is not a run folder with a checkpoint to resume from.
    """
    run = Path(run)
    if not (run / "last.pt").exists() or not (run / "config.json").exists():
        raise TrainingError(f"{run} is not a run folder to resume (it needs config.json and last.pt).")
    stored = json.loads((run / "config.json").read_text())
    cfg = TrainConfig(**{f.name: stored[f.name] for f in fields(TrainConfig) if f.name in stored})
    if epochs is not None:
        cfg.epochs = epochs
    if time_budget_s is not None:
        cfg.time_budget_s = time_budget_s
    if device is not None:
        cfg.device = device
    return cfg


def target_weights(policy: str, length: int, skip: int) -> np.ndarray:
    """Loss weight of each step of a window (the first steps only build up the state)."""
    if policy == "none":
        return np.ones(length, np.float32)
    if policy == "linear":
        return np.linspace(0.0, 1.0, length, dtype=np.float32)
    if policy == "step":
        w = np.ones(length, np.float32)
        w[:skip] = 0.0
        return w
    raise TrainingError(f"--target-weight must be none, linear or step, not {policy!r}.")


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup, then constant or cosine decay to ``min_lr_ratio * lr`` at progress 1."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    ratio = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * ratio


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"--device must be auto, cpu, cuda or cuda:N, not {name!r}.") from None
    if device.type not in ("cpu", "cuda"):
        raise TrainingError(f"--device must be auto, cpu, cuda or cuda:N, not {name!r}.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch finds no CUDA GPU.")
    return device


class _Dist:
    """torchrun's environment: rank, world size, and the few collective calls the loop needs."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        if self.world > 1:
            import torch.distributed as dist
            self.dist = dist
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def agree(self, flag: bool) -> bool:
        """True on every rank if it is true on the main rank."""
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self.dist.broadcast(t, 0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            self.dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            self.dist.destroy_process_group()


def train(cfg: TrainConfig, out: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) into the run folder ``out``; returns the best validation scores."""
    out = Path(out)
    device = pick_device(cfg.device)
    dist = _Dist(device)
    torch.manual_seed(cfg.seed)
    np_rng = np.random.default_rng(cfg.seed + 1000 * dist.rank)

    model_cfg = config_from_dict(cfg.model)
    key_states = model_cfg.key_states
    corpus = load_corpus(cfg.data, cfg.steps_per_beat, progress=progress and dist.main)
    if dist.main and corpus.skipped:
        print(f"skipped {len(corpus.skipped)} unreadable file(s):")
        for path, reason in corpus.skipped:
            print(f"  {path}: {reason}")
    if dist.main and corpus.upbeats:
        print(f"{corpus.upbeats} file(s) start with an upbeat (index.csv): their bar lines moved to the score's")
    windows, lengths, starts = make_windows(corpus.splits["train"], cfg.window, cfg.hop_bars, key_states)
    valid = corpus.sequences("valid", key_states)
    if len(windows) == 0:
        raise TrainingError(f"the training split of {cfg.data} is empty.")
    if not valid:
        raise TrainingError(f"{cfg.data} has no validation sequences: add files (10% go to validation by "
                            "a hash of their path) or a 'valid' split.")

    model = build_model(model_cfg)
    if cfg.init_from and not resume:
        init_from(model, cfg.init_from)
    model = model.to(device)
    average = Average(model, cfg.ema) if cfg.ema else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_rank = len(windows) // dist.world
    batches_per_epoch = max(per_rank // cfg.batch_size, 1)
    total_steps = cfg.epochs * batches_per_epoch
    weights = torch.from_numpy(target_weights(cfg.target_weight, cfg.window, cfg.target_skip)).to(device)

    epoch, batch_in_epoch, step, trained_s, frames_seen, validating_s = 0, 0, 0, 0.0, 0, 0.0
    best = {"nll": float("inf")}
    if resume:
        tensors, meta = read_checkpoint(out / "last.pt")
        model.load_state_dict(tensors["model"])
        optimizer.load_state_dict(tensors["optimizer"])
        if average is not None:
            average.load_state_dict(tensors["ema"])
        torch.set_rng_state(tensors["torch_rng"])
        np_rng.bit_generator.state = meta["numpy_rng"][dist.rank]
        epoch, batch_in_epoch, step, trained_s = meta["epoch"], meta["batch"], meta["step"], meta["trained_s"]
        frames_seen, validating_s = meta["frames_seen"], meta["validating_s"]
        best = meta["best"]
    elif dist.main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "config.json", json.dumps(asdict(cfg), indent=2).encode())

    net = model
    if dist.world > 1:
        # the autoencoder leaves EnDeCell's time LSTM unused
        net = torch.nn.parallel.DistributedDataParallel(
            model, find_unused_parameters=model_cfg.architecture == "autoencoder")

    trained_on = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"

    def meta_common() -> dict:
        return {"model": asdict(model_cfg), "train": asdict(cfg), "corpus": corpus.name,
                "steps_per_beat": corpus.steps_per_beat, "frames": corpus.frames("train"),
                "world_size": dist.world, "trained_on": trained_on}

    def save_last() -> None:
        states = [np_rng.bit_generator.state]
        if dist.world > 1:
            gathered = [None] * dist.world
            dist.dist.all_gather_object(gathered, np_rng.bit_generator.state)
            states = gathered
        if dist.main:
            meta = {**meta_common(), "epoch": epoch, "batch": batch_in_epoch, "step": step,
                    "trained_s": trained_s, "frames_seen": frames_seen, "validating_s": validating_s,
                    "best": best, "numpy_rng": states}
            tensors = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "torch_rng": torch.get_rng_state()}
            if average is not None:
                tensors["ema"] = average.state_dict()
            save_checkpoint(out / "last.pt", tensors, meta)

    def validate() -> None:
        """Score the validation split (with the averaged weights where kept), log it, and keep
        best.pt when it is the best yet."""
        nonlocal best, validating_s
        t0 = time.perf_counter()
        if dist.main:
            with average.swapped_in() if average is not None else contextlib.nullcontext():
                scores = evaluate(model, valid, device, accuracy=False)
                record = {"epoch": epoch, "step": step, "trained_s": round(trained_s, 1),
                          "valid_nll": scores.nll, "lr": optimizer.param_groups[0]["lr"]}
                with open(out / "log.jsonl", "a") as log:
                    log.write(json.dumps(finite(record), allow_nan=False) + "\n")
                improved = scores.nll < best["nll"]
                meta = {**meta_common(), "valid": scores.as_dict(), "epoch": epoch, "step": step,
                        "trained_s": trained_s, "frames_seen": frames_seen,
                        "frames_per_s": frames_seen / max(trained_s, 1e-9),
                        "wall_s": trained_s + validating_s}
                if improved:
                    best = {"nll": scores.nll, "epoch": epoch, "step": step, "trained_s": trained_s}
                    save_checkpoint(out / "best.pt", {"model": model.state_dict()}, meta)
                    atomic_write_bytes(out / "best.json", json.dumps(finite(meta), indent=2, allow_nan=False).encode())
                    if cfg.sample_png and hasattr(model, "sample"):
                        sample_png(model, corpus, key_states, cfg.window, out / "best.png", device)
                if cfg.snapshots and epoch and batch_in_epoch == 0 and epoch % cfg.snapshots == 0:
                    save_checkpoint(out / f"snapshot-{epoch:04d}.pt", {"model": model.state_dict()}, meta)
            if progress:
                print(f"epoch {epoch}: valid NLL {scores.nll:.4f} nats/frame"
                      f"{'  (best)' if improved else ''}  [{trained_s:.0f} s]", flush=True)
        dist.barrier()
        validating_s += time.perf_counter() - t0

    from tqdm import tqdm
    last_save = time.monotonic()
    stop = False
    while epoch < cfg.epochs and not stop:
        order = epoch_order(len(windows), cfg.seed, epoch)[dist.rank::dist.world][:per_rank]
        bar = tqdm(total=batches_per_epoch, initial=batch_in_epoch, desc=f"epoch {epoch}",
                   disable=not (progress and dist.main), leave=False, unit="batch")
        net.train()
        while batch_in_epoch < batches_per_epoch:
            t0 = time.perf_counter()
            idx = order[batch_in_epoch * cfg.batch_size:(batch_in_epoch + 1) * cfg.batch_size]
            batch = transpose_batch(windows[idx], cfg.transpose, np_rng)
            x = torch.from_numpy(batch.astype(np.int64)).to(device)                        # (B, T, 88)
            mask = torch.arange(cfg.window, device=device) < torch.from_numpy(lengths[idx]).to(device).unsqueeze(1)
            progress_frac = max(step / total_steps, trained_s / cfg.time_budget_s if cfg.time_budget_s else 0.0)
            lr = learning_rate(cfg, step, progress_frac)
            for group in optimizer.param_groups:
                group["lr"] = lr

            history = x
            p_feed = cfg.scheduled_sampling * min(progress_frac, 1.0)
            if p_feed > 0:
                with torch.no_grad():
                    logits, _ = net(x)
                    own, _ = sample_states(logits, torch.rand(x.shape, device=device), 1.0)
                    feed = torch.rand(x.shape[:2], device=device).unsqueeze(-1) < p_feed
                    history = torch.where(feed, own, x)
            logits, _ = net(history, targets=x)
            ll = frame_log_likelihood(logits, x)                                           # (B, T)
            inside = torch.from_numpy(starts[idx] > 0).to(device).unsqueeze(1)          # (B, 1)
            w = torch.where(inside, weights, torch.ones_like(weights)) * mask
            loss = -(ll * w).sum() / w.sum().clamp(min=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if average is not None:
                average.update(step)

            step += 1
            batch_in_epoch += 1
            dt = time.perf_counter() - t0
            trained_s += dt
            n_frames = int(mask.sum().item()) * dist.world
            frames_seen += n_frames
            frames_nll = (-(ll * mask).sum() / mask.sum()).item()
            bar.set_postfix(nll=f"{frames_nll:.3f}", fps=f"{int(n_frames / dt)}", lr=f"{lr:.1e}")
            bar.update()
            over_budget = bool(cfg.time_budget_s) and trained_s >= cfg.time_budget_s
            if dist.agree(over_budget):
                stop = True
                break
            if dist.agree(time.monotonic() - last_save > cfg.checkpoint_every_s):
                save_last()
                last_save = time.monotonic()
        bar.close()
        if batch_in_epoch >= batches_per_epoch:
            epoch, batch_in_epoch = epoch + 1, 0
        validate()
        save_last()
        last_save = time.monotonic()
    dist.close()
    return best


class Average:
    """An exponential moving average of a model's weights, decay ``min(decay, (1 + n) / (10 + n))``
    after n updates (so the first steps' random weights fade at once). ``swapped_in`` puts it in
    the model's place for validation and for best.pt, and the raw weights back after."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise TrainingError(f"--ema takes a decay between 0 and 1 (like 0.999), not {decay:g}.")
        self.model, self.decay = model, decay
        self.weights = {k: p.detach().clone() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, n: int) -> None:
        d = min(self.decay, (1 + n) / (10 + n))
        for k, p in self.model.named_parameters():
            self.weights[k].lerp_(p.detach(), 1.0 - d)

    @contextlib.contextmanager
    def swapped_in(self):
        params = dict(self.model.named_parameters())
        raw = {k: p.detach().clone() for k, p in params.items()}
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(self.weights[k])
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in params.items():
                    p.copy_(raw[k])

    def state_dict(self) -> dict:
        return dict(self.weights)

    def load_state_dict(self, weights: dict) -> None:
        for k, w in weights.items():
            self.weights[k].copy_(w)
