"""An exported model's folder, as docs/model-format.md defines it: ``model.json`` read and
checked (format, values of the right type and range, each graph present and matching its
sha256), and the shipped models found by name.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from pathlib import Path

FORMAT = 1
ROLES = ("encode", "advance", "bar")
OPTIONAL_ROLES = ("step",)                # checked where model.json names them (older folders lack step.onnx)
ARCHITECTURES = ("basic", "endecell")
REQUIRED = ("format", "name", "architecture", "key_states", "steps_per_beat", "beats_per_bar",
            "steps_per_bar", "bar_steps", "state", "files")


class ModelError(ValueError):
    """A model folder that cannot be used: missing, damaged, or not what model.json says."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_model_json(folder: Path) -> dict:
    """model.json of a folder, with every file it names present and matching its sha256."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder} is not a model folder.")
    try:
        info = json.loads((folder / "model.json").read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder} has no model.json, so it is not an exported livecomp model.") from None
    except OSError as exc:
        raise ModelError(f"{folder / 'model.json'} cannot be read ({exc.strerror or exc}).") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{folder / 'model.json'} is not valid JSON ({exc}).") from None
    if not isinstance(info, dict) or any(k not in info for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(info, dict) or k not in info]
        raise ModelError(f"{folder / 'model.json'} lacks {', '.join(missing)}.")
    if info["format"] != FORMAT:
        raise ModelError(f"{folder} is model format {info['format']!r}; this livecomp reads format {FORMAT}.")
    check_values(info, folder / "model.json")
    named = info["files"] if isinstance(info["files"], dict) else {}
    for role in ROLES + tuple(r for r in OPTIONAL_ROLES if r in named):
        entry = named.get(role)
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or \
                not isinstance(entry.get("sha256"), str):
            raise ModelError(f"{folder / 'model.json'} names no {role} graph.")
        path = folder / entry["path"]
        if Path(entry["path"]).is_absolute() or not path.resolve().is_relative_to(folder.resolve()):
            raise ModelError(f"{folder / 'model.json'}: the {role} graph's path {plain(entry['path'])!r} leads out of "
                             f"the model folder; a model's files lie in its folder.")
        if not path.is_file():
            raise ModelError(f"{path} is missing.")
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise ModelError(f"{path} cannot be read ({exc.strerror or exc}).") from None
        if digest != entry["sha256"]:
            raise ModelError(f"{path} does not match the sha256 in model.json (damaged or replaced).")
    return info


def check_values(info: dict, where: Path | str) -> None:
    """Each value of model.json of the type and range the contract gives (docs/model-format.md)."""
    def whole(key: str, low: int, high: int) -> int:
        value = info[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ModelError(f"{where}: {key} must be a whole number from {low} to {high}, not {value!r}.")
        return value

    if info["architecture"] not in ARCHITECTURES:
        raise ModelError(f"{where}: architecture {info['architecture']!r} is not one this livecomp runs "
                         f"({', '.join(ARCHITECTURES)}).")
    if not isinstance(info["name"], str):
        raise ModelError(f"{where}: name must be text, not {info['name']!r}.")
    whole("key_states", 2, 3)
    if info.get("low_key", 21) != 21 or info.get("n_keys", 88) != 88:
        raise ModelError(f"{where}: low_key {info.get('low_key')!r} and n_keys {info.get('n_keys')!r} must be 21 "
                         f"and 88: livecomp plays the piano's 88 keys from A0.")
    spb, bpb = whole("steps_per_beat", 1, 96), whole("beats_per_bar", 1, 32)
    if whole("steps_per_bar", 1, 96 * 32) != spb * bpb:
        raise ModelError(f"{where}: steps_per_bar {info['steps_per_bar']} is not steps_per_beat x beats_per_bar "
                         f"({spb * bpb}).")
    whole("bar_steps", 1, 96 * 32)
    if "mix_shifts" in info:
        whole("mix_shifts", 0, 12)
    trained = info.get("training")
    model = trained.get("model") if isinstance(trained, dict) else None
    # a bar cut short is written step by step where its tempered log-probability is not encode's
    # per-key one: a mixture's (one copy per frame) and a joint model's (one draw per group)
    needs_step = ("a mixture of transposed copies (mix_shifts)" if "mix_shifts" in info else
                  "a model that draws keys in groups (joint_keys)"
                  if isinstance(model, dict) and model.get("joint_keys", 1) != 1 else None)
    if needs_step and "step" not in info["files"]:
        raise ModelError(f"{where}: {needs_step} needs its step graph, which model.json does not name.")
    if "candidates" in info:
        whole("candidates", 1, 64)             # the candidate bars live playing samples by default
    if "fit_floors" in info:                   # how far from its call an answer may go (bench/musicality.py)
        from ..music.musicality import floors_from_json
        try:
            floors_from_json(info["fit_floors"])
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}.") from None
    if "repeat_gate" in info:                  # how often an answer bar brings back the call's (bench/musicality.py)
        from ..music.form import RepeatGate
        try:
            RepeatGate.from_json(info["repeat_gate"])
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}.") from None
    if "specialists" in info:                  # shipped models that answer calls they explain better
        names = info["specialists"]
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names) or \
                len(set(names)) != len(names) or info["name"] in names:
            raise ModelError(f"{where}: specialists must be a list of other models' names, each once, not "
                             f"{plain(names)!r}.")
    if "ensemble" in info:
        whole("ensemble", 2, 64)               # runs whose per-key conditionals are averaged
    state = info["state"]
    if not isinstance(state, list) or not state or not all(
            isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("shape"), list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in t["shape"]) for t in state):
        raise ModelError(f"{where}: state must be a list of tensors, each with a name and a shape of positive "
                         f"whole numbers.")


DEFAULT_MODEL = "piano"


def shipped_models() -> dict[str, Path]:
    """The models that come with livecomp: name -> folder."""
    from importlib import resources

    try:
        root = Path(str(resources.files("livecomp.exported")))
    except ModuleNotFoundError:
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "model.json").is_file()}


def find_model(name_or_path: str | Path | None = None) -> Path:
    """A model folder from a path, or the name of a shipped model (default: ``DEFAULT_MODEL``)."""
    if name_or_path is not None and Path(name_or_path).is_dir():
        return Path(name_or_path)
    name = str(name_or_path or DEFAULT_MODEL)
    models = shipped_models()
    if name in models:
        return models[name]
    known = ", ".join(models) or "none installed"
    raise ModelError(f"no model folder or shipped model named {name!r} (shipped: {known}).")


def plain(value) -> str:
    """Text from a model folder (untrusted) as it may reach a terminal: control characters, and
    with them any escape sequence, shown as "?"."""
    return "".join("?" if unicodedata.category(c)[0] == "C" else c for c in str(value))


def corpus_names(corpus: str) -> str:
    """A training corpus as a musician reads it: the collections' names, not the folders they
    were on the machine that trained ("../shared/midi/piano-midi-de,../shared/midi/mutopia" ->
    "piano-midi-de + mutopia")."""
    return " + ".join(plain(Path(part).name or part) for part in corpus.split(",") if part)


def _table(info: dict, key: str) -> dict:
    value = info.get(key)
    return value if isinstance(value, dict) else {}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def card(folder: Path) -> list[str]:
    """What a musician choosing a model wants to know, from its model.json, a line each: what it
    is, what it learnt from (and the data's licence), its grid, its size, and its figures. The
    descriptive fields are taken only where they have the type they should, and shown plain."""
    info = read_model_json(folder)
    training = _table(info, "training")
    spb, bpb = info["steps_per_beat"], info["beats_per_bar"]
    lines = [f"{plain(info['name'])}: {info['architecture']}, {spb} step{'s' * (spb != 1)} a beat, "
             f"{bpb} beat{'s' * (bpb != 1)} a bar"
             + (f", the mean of {info['ensemble']} runs" if isinstance(info.get("ensemble"), int) else "")
             + (f", {info['parameters']:,} parameters" if isinstance(info.get("parameters"), int)
                and not isinstance(info.get("parameters"), bool) else "")
             + f" ({plain(folder)})"]
    if isinstance(training.get("corpus"), str) and training["corpus"]:
        licence, frames = training.get("corpus_licence"), training.get("frames")
        about = [f"{frames:,} frames" if isinstance(frames, int) and not isinstance(frames, bool) else "",
                 plain(licence) if isinstance(licence, str) and licence else ""]
        lines.append(f"  learnt from {corpus_names(training['corpus'])}"
                     + (f" ({'; '.join(a for a in about if a)})" if any(about) else ""))
    for corpus, figures in _table(info, "metrics").items():
        if isinstance(figures, dict) and _number(figures.get("nll")):
            frames = figures.get("frames")
            lines.append(f"  test NLL {figures['nll']:.3f} nats a frame on {corpus_names(corpus)} "
                         f"({frames if isinstance(frames, int) else '?'} frames)")
    if "candidates" in info:                     # checked by read_model_json: a whole number 1..64
        lines.append(f"  answers choose among {info['candidates']} candidate bars each (--candidates to change)")
    if "fit_floors" in info:                     # checked by read_model_json
        lines.append("  an answer bar goes no further from its call than 9 in 10 of the real continuations in its "
                     "training data (fit_floors)")
    if "repeat_gate" in info:                    # checked by read_model_json
        lines.append("  an answer bar brings back the call's bar at its place in the phrase as often as the music it "
                     "learnt from does (repeat_gate)")
    if info.get("specialists"):                 # checked by read_model_json
        lines.append(f"  a call that {', '.join(map(plain, info['specialists']))} finds more likely than this model "
                     f"does is answered by that model (--no-follow-style: never)")
    musicality = _table(info, "musicality")
    measures = ("key", "rhythm", "density", "register")
    answers = {k: v for k, v in musicality.items() if isinstance(v, dict) and isinstance(v.get("real"), dict)
               and all(_number(v.get(m)) and _number(v["real"].get(m)) for m in measures)}
    if answers:
        bench = musicality.get("bench")
        lines.append("  its answers to calls from each corpus "
                     f"({plain(bench) if isinstance(bench, str) else 'bench/musicality.py'}), the "
                     f"composers' own next bars in brackets: key and rhythm agree with the call (1: the same), "
                     f"density in the call's notes a bar, register in semitones from the call's")
        for corpus, m in answers.items():
            real = m["real"]
            lines.append(f"    {plain(corpus):<14} key {m['key']:.2f} ({real['key']:.2f})  rhythm {m['rhythm']:.2f} "
                         f"({real['rhythm']:.2f})  density {m['density']:.2f} ({real['density']:.2f})  "
                         f"register {m['register']:.1f} ({real['register']:.1f})")
    return lines
