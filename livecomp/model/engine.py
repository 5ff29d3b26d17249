"""The runtime side of an exported model: onnxruntime sessions over its graphs.

A model folder (``livecomp.model.folder``: model.json, the contract in docs/model-format.md, and the graphs) is
checked there; loading here checks that the graphs' inputs and outputs have the names and
shapes ``model.json`` promises; anything else is refused with one sentence (``ModelError``).

The model's state is opaque to callers: ``State`` holds one row per batch entry (a candidate,
a sequence) and is only passed back to ``encode`` and ``bar``. All shapes are in steps: a
frame is 88 key states (0 off, 1 held, 2 struck; 0/1 for key_states 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..music.form import REPEAT_GATE, RepeatGate
from ..music.musicality import floors_from_json
from ..music.roll import N_KEYS
from .folder import ModelError, plain, read_model_json
from .scoring import Tally, batches

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
DEFAULT_CANDIDATES = 16          # candidate bars per answer bar where model.json names no count of its own
ARCHITECTURE_KEY = "livecomp.architecture"   # each graph's metadata: the architecture it was exported from


@dataclass
class State:
    """The model's state for a batch of rows: name -> array [B, ...] float32. Opaque to callers."""

    tensors: dict[str, np.ndarray]

    @property
    def batch(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def take(self, rows) -> "State":
        """The state of the given rows (an index or a list of indices)."""
        rows = np.atleast_1d(rows)
        return State({k: np.ascontiguousarray(v[rows]) for k, v in self.tensors.items()})

    def same(self, other: "State") -> bool:
        """The very same state: every array equal, bit for bit."""
        return self.tensors.keys() == other.tensors.keys() and all(
            np.array_equal(v, other.tensors[k]) for k, v in self.tensors.items())

    def repeat(self, n: int) -> "State":
        """Each row repeated n times (row 0 n times, then row 1, ...)."""
        return State({k: np.repeat(v, n, axis=0) for k, v in self.tensors.items()})


def _session(path: Path, provider: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=[PROVIDERS[provider]])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"{path} cannot be loaded by onnxruntime ({str(exc).splitlines()[0][:160]}).") from None


def cuda_usable() -> bool:
    """Whether onnxruntime can run on a GPU here (the GPU build, a driver and a device)."""
    import ctypes

    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    for driver in ("libcuda.so.1", "nvcuda.dll"):          # the GPU driver, Linux or Windows
        try:
            ctypes.CDLL(driver)
            return True
        except OSError:
            pass
    return False


class Engine:
    """An exported model, ready to encode what it hears and to write bars.

    ``provider``: "cpu", "cuda", or "auto" (measure both on ``job`` where a GPU is usable and
    keep the faster; "live" = one step and one bar at batch 1, "batch" = long sequences at
    batch 32). ``threads``: onnxruntime intra-op threads (1 for live use, so the other cores
    stay free and latency stays steady). ``provider_used`` says which one runs.
    """

    def __init__(self, folder: str | Path, provider: str = "auto", threads: int = 1, job: str = "live"):
        self.folder = Path(folder)
        self.info = read_model_json(self.folder)
        self.name = plain(self.info["name"])      # untrusted text: no escape codes
        self.architecture = self.info["architecture"]
        self.key_states = int(self.info["key_states"])
        self.steps_per_beat = int(self.info["steps_per_beat"])
        self.beats_per_bar = int(self.info["beats_per_bar"])
        self.steps_per_bar = int(self.info["steps_per_bar"])
        self.bar_steps = int(self.info["bar_steps"])
        # the candidate bars listen and duet sample per answer bar unless told: as many as the
        # model's answer bar fits in the live budget (bench/latency.py), set at export
        self.candidates = int(self.info.get("candidates", DEFAULT_CANDIDATES))
        # how far from its call an answer may go, measured on the model's own training data
        # (bench/musicality.py --floors --write-floors); None: FIT_FLOORS
        self.fit_floors = floors_from_json(self.info["fit_floors"]) if "fit_floors" in self.info else None
        # how likely an answer bar brings back the call's bar at its place in the phrase, learnt
        # on the model's own training data (bench/musicality.py --gate --write-gate); else the default's
        self.repeat_gate = RepeatGate.from_json(self.info["repeat_gate"]) if "repeat_gate" in self.info \
            else REPEAT_GATE
        self.state_spec = [(s["name"], tuple(s["shape"])) for s in self.info["state"]]
        # shipped models on the same grid that answer a call they find more likely than this one
        # does (``specialists``; the performer's style following)
        self.specialist_names = [str(n) for n in self.info.get("specialists", [])]
        self._specialists: list[Engine] | None = None
        self._provider, self._threads = provider, threads
        if provider not in ("auto", "cpu", "cuda"):
            raise ModelError(f"provider must be auto, cpu or cuda, not {provider!r}.")
        if provider == "cuda" and not cuda_usable():
            raise ModelError("--provider cuda was asked for, but onnxruntime finds no usable GPU here.")
        self.provider_used = "cpu"
        self._inputs: dict[int, set] = {}
        self._load("cpu" if provider != "cuda" else "cuda", threads)
        if provider == "auto" and cuda_usable():
            cpu_time = self._time_job(job)
            cpu_sessions = (self._encode, self._advance, self._bar, self._step)
            try:
                self._load("cuda", threads)
                if self._time_job(job) >= cpu_time:
                    self._encode, self._advance, self._bar, self._step = cpu_sessions
                    self.provider_used = "cpu"
            except ModelError:
                self._encode, self._advance, self._bar, self._step = cpu_sessions
                self.provider_used = "cpu"

    def specialists(self) -> list["Engine"]:
        """The models model.json names as ``specialists``, loaded once (with this engine's provider
        and threads; ``listen`` loads them in a thread of their own, so it listens at once).
        Raises ModelError for one that cannot be found or loaded, or that is on another grid: a
        specialist answers on this model's grid."""
        if self._specialists is None:
            loaded = []
            for name, folder in zip(self.specialist_names, self.specialist_folders()):
                try:
                    engine = Engine(folder, self._provider, self._threads)
                except ModelError as exc:
                    raise self._unloadable(name, exc) from None
                if (engine.steps_per_beat, engine.beats_per_bar) != (self.steps_per_beat, self.beats_per_bar):
                    raise ModelError(f"{self.folder / 'model.json'} names the specialist {plain(name)!r}, which is "
                                     f"on another grid ({engine.steps_per_beat} steps a beat, {engine.beats_per_bar} "
                                     f"beats a bar).")
                loaded.append(engine)
            self._specialists = loaded
        return self._specialists

    def specialist_folders(self) -> list[Path]:
        """The folders of the specialists model.json names, found without loading them (at once);
        ModelError for a name that is no shipped model or folder."""
        from .folder import find_model

        folders = []
        for name in self.specialist_names:
            try:
                folders.append(find_model(name))
            except ModelError as exc:
                raise self._unloadable(name, exc) from None
        return folders

    def _unloadable(self, name: str, exc: ModelError) -> ModelError:
        return ModelError(f"{self.folder / 'model.json'} names the specialist {plain(name)!r}, which cannot be "
                          f"loaded: {exc}")

    def loaded_specialists(self) -> list["Engine"]:
        """The specialists once ``specialists`` has loaded them (in any thread), none before."""
        return self._specialists or []

    def call_log_likelihood(self, frames: np.ndarray) -> float:
        """log p of frames (T, 88) from the model's first state, nats: how well the model
        explains a call, comparable between models on the same grid."""
        frames = np.asarray(frames, np.int64)[None]
        _, logits = self.encode(frames)
        return float(frame_log_likelihood(logits, frames).sum())

    # -- loading ---------------------------------------------------------------------------

    def _load(self, provider: str, threads: int) -> None:
        files = self.info["files"]
        self._encode = _session(self.folder / files["encode"]["path"], provider, threads)
        self._advance = _session(self.folder / files["advance"]["path"], provider, threads)
        self._bar = _session(self.folder / files["bar"]["path"], provider, threads)
        # step.onnx: bar.onnx's sampler for one step (--mode duet's every step); older folders lack it
        self._step = _session(self.folder / files["step"]["path"], provider, threads) if "step" in files else None
        used = self._encode.get_providers()[0]
        if used != PROVIDERS[provider]:
            raise ModelError(f"onnxruntime could not start the {provider} provider for {self.folder}.")
        self.provider_used = provider
        self._check_graphs()

    def _check_graphs(self) -> None:
        """The graphs take and give what model.json says, or the folder is refused."""
        K = self.key_states

        def shapes(args) -> dict:
            return {a.name: a.shape for a in args}

        def fits(actual, expected) -> bool:
            return len(actual) == len(expected) and all(
                e is None or not isinstance(a, int) or a == e for a, e in zip(actual, expected))

        want_state = {name: [None, *shape] for name, shape in self.state_spec}
        want_state_out = {f"{name}_out": [None, *shape] for name, shape in self.state_spec}
        checks = [
            ("encode.onnx inputs", shapes(self._encode.get_inputs()), {"frames": [None, None, N_KEYS], **want_state}),
            ("encode.onnx outputs", shapes(self._encode.get_outputs()), {"logits": [None, None, N_KEYS, K],
                                                                         **want_state_out}),
            ("advance.onnx inputs", shapes(self._advance.get_inputs()), {"frames": [None, None, N_KEYS], **want_state}),
            ("advance.onnx outputs", shapes(self._advance.get_outputs()), want_state_out),
            ("bar.onnx inputs", shapes(self._bar.get_inputs()),
             {"temperature": [], "noise": [None, self.bar_steps, N_KEYS], **want_state}),
            ("bar.onnx outputs", shapes(self._bar.get_outputs()),
             {"frames_out": [None, self.bar_steps, N_KEYS], "logp": [None], **want_state_out}),
        ]
        if self._step is not None:
            checks += [("step.onnx inputs", shapes(self._step.get_inputs()),
                        {"temperature": [], "noise": [None, 1, N_KEYS], **want_state}),
                       ("step.onnx outputs", shapes(self._step.get_outputs()),
                        {"frames_out": [None, 1, N_KEYS], "logp": [None], **want_state_out})]
        for role, session in (("encode", self._encode), ("advance", self._advance), ("bar", self._bar),
                              ("step", self._step)):
            stamped = session and session.get_modelmeta().custom_metadata_map.get(ARCHITECTURE_KEY)
            if stamped and stamped != self.architecture:     # graphs exported before the stamp carry none
                raise ModelError(f"{self.folder}: model.json says architecture {self.architecture!r}, but {role}.onnx "
                                 f"was exported from {plain(stamped)!r}.")
        for what, actual, expected in checks:
            # a graph may leave out a state input it does not read (advance.onnx never reads the
            # previous frame: the new one is the last frame given); every output must be there
            needed = set(expected) if "outputs" in what else set(expected) - set(want_state)
            if not needed <= set(actual) <= set(expected) or not all(fits(actual[n], expected[n]) for n in actual):
                raise ModelError(f"{self.folder}: the {what} do not match model.json "
                                 f"(expected {expected}, found {actual}).")

    def _state_feeds(self, session, state: State) -> dict:
        names = self._inputs.setdefault(id(session), {i.name for i in session.get_inputs()})
        return {k: v for k, v in state.tensors.items() if k in names}

    def _time_job(self, job: str, repeats: int = 20) -> float:
        if job == "batch":
            frames = np.zeros((32, 64, N_KEYS), np.int64)
            call = lambda: self.encode(frames)  # noqa: E731
        else:
            state = self.initial_state()
            call = lambda: (self.advance(np.zeros((1, 1, N_KEYS), np.int64), state), self.bar(state))  # noqa: E731
        call()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        return time.perf_counter() - start

    # -- the model -------------------------------------------------------------------------

    def initial_state(self, batch: int = 1) -> State:
        """The zero state: nothing heard yet."""
        return State({name: np.zeros((batch, *shape), np.float32) for name, shape in self.state_spec})

    def encode(self, frames: np.ndarray, state: State | None = None) -> tuple[State, np.ndarray]:
        """Fold frames (B, T, 88) (or (T, 88) for one row) into the state.

        Returns (state after the frames, logits (B, T, 88, key_states)): at step t the model's
        scores for frames[:, t] given the state and frames[:, :t]."""
        named, after = self._run_frames(self._encode, frames, state)
        return after, named["logits"]

    def advance(self, frames: np.ndarray, state: State | None = None) -> State:
        """Fold frames (B, T, 88) (or (T, 88)) into the state without scoring them: the call a
        listener makes every step (``encode`` also returns the logits, which cost EnDeCell a
        decoder pass)."""
        return self._run_frames(self._advance, frames, state)[1]

    def _run_frames(self, session, frames: np.ndarray, state: State | None) -> tuple[dict, State]:
        frames = np.asarray(frames, dtype=np.int64)
        if frames.ndim == 2:
            frames = frames[None]
        if state is None:
            state = self.initial_state(frames.shape[0])
        return self._run(session, {"frames": frames}, state)

    def _run(self, session, feeds: dict, state: State) -> tuple[dict, State]:
        """One call of a graph: its outputs by name, and the state it returns."""
        outputs = session.run(None, {**feeds, **self._state_feeds(session, state)})
        named = dict(zip((o.name for o in session.get_outputs()), outputs))
        return named, State({name: named[f"{name}_out"] for name, _ in self.state_spec})

    def bar(self, state: State, candidates: int = 1, temperature: float = 1.0,
            seed: int | np.random.Generator | None = None, steps: int | None = None
            ) -> tuple[np.ndarray, np.ndarray, State]:
        """Sample ``steps`` steps (default one bar of the model's meter) after ``state``.

        A state of one row gives ``candidates`` continuations in one call; a state of B rows
        gives one each. Returns (frames (B, steps, 88) int64, log-probability of each under the
        tempered model (B,), state after each). The same seed gives the same frames.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        steps = self.steps_per_bar if steps is None else steps
        if state.batch == 1 and candidates > 1:
            state = state.repeat(candidates)
        temp = np.asarray(max(float(temperature), 1e-3), np.float32)
        parts, logp, current = [], np.zeros(state.batch, np.float64), state
        done = 0
        while done < steps:
            noise = rng.random((current.batch, self.bar_steps, N_KEYS), dtype=np.float32)
            take = min(self.bar_steps, steps - done)
            if take == self.bar_steps or self._step is None:
                frames, bar_logp, after = self.bar_from_noise(current, noise, temp)
            if take == self.bar_steps:
                parts.append(frames)
                logp += bar_logp
                current = after
            elif self._step is not None:     # fewer steps than a bar: one step graph each, the same noise
                for i in range(take):
                    frame, step_logp, current = self.step_from_noise(current, noise[:, i:i + 1], temp)
                    parts.append(frame)
                    logp += step_logp
            else:   # a folder without step.onnx: keep the bar's start, re-encode the state
                part = frames[:, :take]
                after, logits = self.encode(part, current)
                logp += tempered_log_prob(logits, part, float(temp))
                parts.append(part)
                current = after
            done += take
        return np.concatenate(parts, 1), logp, current

    def step_from_noise(self, state: State, noise: np.ndarray,
                        temperature: float) -> tuple[np.ndarray, np.ndarray, State]:
        """One call of step.onnx: noise (B, 1, 88) -> (frames (B, 1, 88), logp, state after)."""
        named, after = self._run(self._step, {"temperature": np.asarray(temperature, np.float32),
                                              "noise": np.asarray(noise, np.float32)}, state)
        return named["frames_out"], named["logp"], after

    def bar_from_noise(self, state: State, noise: np.ndarray,
                       temperature: float) -> tuple[np.ndarray, np.ndarray, State]:
        """One call of bar.onnx: noise (B, bar_steps, 88) uniform in [0, 1) -> (frames, logp, state)."""
        named, after = self._run(self._bar, {"temperature": np.asarray(temperature, np.float32),
                                             "noise": np.asarray(noise, np.float32)}, state)
        return named["frames_out"], named["logp"], after


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def frame_log_likelihood(logits: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """logits (..., 88, K), frames (..., 88) -> log p(frame) summed over keys (...), nats."""
    picked = np.take_along_axis(log_softmax(logits), frames[..., None], -1)[..., 0]
    return picked.sum(-1)


def tempered_log_prob(logits: np.ndarray, frames: np.ndarray, temperature: float) -> np.ndarray:
    """log p of frames (B, T, 88) under the logits divided by temperature, summed per row (B,)."""
    return frame_log_likelihood(logits / temperature, frames).sum(-1)


def score(engine: Engine, sequences: list[np.ndarray], max_frames: int = 16384) -> dict:
    """NLL per frame (nats; with and without each sequence's first frame) and, for the basic
    RNN whose most likely frame is each key's most likely state, frame accuracy: ``scoring``'
    definitions, as ``livecomp eval`` on a checkpoint. A mixture of transposed copies
    (``mix_shifts`` in model.json) scores per-key conditionals, whose maxima are not its most
    likely frame, so it gets no accuracy here."""
    tally = Tally(accuracy=engine.architecture == "basic" and not engine.info.get("mix_shifts"))
    for frames, mask in batches(sequences, max_frames):
        _, logits = engine.encode(frames)
        tally.add(frame_log_likelihood(logits, frames), mask, frames,
                  logits.argmax(-1) if tally.accuracy else None)
    return tally.result()
