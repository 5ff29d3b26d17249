"""Every setting of a model and of a training run, defined once and without torch: the model
families' configs (stored in checkpoints and model.json), the run's ``TrainConfig``, and the
``FLAGS`` that map `livecomp train`'s options onto them. The command's options carry no defaults
of their own: an option left out is the config's default, which its help text shows
(``default_text``), so `livecomp --help` needs no torch."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from livecomp.files import TextFileError, small_text
from livecomp.music.roll import N_KEYS

MAX_JOINT_CLASSES = 256            # states of one joint draw of keys (3^5 = 243, 2^8 = 256)


@dataclass
class BasicConfig:
    key_states: int = 2
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.3
    input_dropout: float = 0.0
    weight_drop: float = 0.0         # training: DropConnect on the LSTM's recurrent weights
    neighbour_keys: int = 12         # keys either side each classifier reads from the previous frame
                                     # (0: the original form)
    mix_shifts: int = 0              # > 0: a mixture of the copies transposed by -m..m semitones
    architecture: str = "basic"


@dataclass
class EnDeCellConfig:
    key_states: int = 2
    chunk: int = 4
    enc_hidden: int = 128
    time_hidden: int = 256
    time_layers: int = 2
    dec_hidden: int = 128
    pos_dim: int = 16
    neighbour_keys: int = 12         # keys of the neighbourhood the decoder sees directly (>= chunk)
    encoder_skip: bool = True        # add a linear map of the frame to the encoder's vector
    lookback: int = 0                # steps back of the frame each decoder step also sees (0: none)
    dropout: float = 0.3
    input_dropout: float = 0.0       # training: each sounding key of a frame the encoder reads dropped
    weight_drop: float = 0.0         # training: DropConnect on the time LSTM's recurrent weights
    dec_dropout: float = 0.0         # training: dropout on the decoder's output at each key (chunk)
    joint_keys: int = 1              # keys of a chunk drawn as one choice among their K^n states (1: each key alone)
    link_hidden: int = 0             # joint keys: units of the layer that tells each group what was drawn below it
    architecture: str = "endecell"

    @property
    def n_chunks(self) -> int:
        return math.ceil(N_KEYS / self.chunk)

    @property
    def padded_keys(self) -> int:
        return self.n_chunks * self.chunk

    def __post_init__(self):
        if self.joint_keys < 1 or self.chunk % self.joint_keys:
            raise ValueError(f"--joint-keys {self.joint_keys} must divide --chunk {self.chunk}: each chunk is "
                             f"drawn as groups of that many keys.")
        if self.key_states ** self.joint_keys > MAX_JOINT_CLASSES:
            raise ValueError(f"--joint-keys {self.joint_keys} gives {self.key_states ** self.joint_keys} states per "
                             "draw "
                             f"at --key-states {self.key_states}; at most {MAX_JOINT_CLASSES} keep the draw cheap.")
        if self.link_hidden < 0 or self.link_hidden and self.joint_keys == 1:
            raise ValueError(f"--link-hidden {self.link_hidden} tells each group of a chunk what was drawn below it: "
                             "give 0 or more, with --joint-keys above 1.")

    @property
    def groups(self) -> int:
        """Joint draws per chunk: ``chunk / joint_keys`` groups, each one categorical."""
        return self.chunk // self.joint_keys

    @property
    def classes(self) -> int:
        """The states of one group of ``joint_keys`` keys together: K^joint_keys."""
        return self.key_states ** self.joint_keys

    @property
    def reach(self) -> int:
        """Keys either side of a chunk that its decoder step sees (at least the chunk below)."""
        return max(self.neighbour_keys, self.chunk)

    def decoder_columns(self) -> dict[str, tuple[slice, int | None]]:
        """The layout of a decoder step's input, defined here once for the model and its graphs:
        part -> (its columns, the keys it codes, K - 1 columns each; None for the chunk's
        position, ``pos_dim`` learnt features). In order: the ``reach`` keys just written below
        the chunk, the previous frame around the chunk, the position, and with a lookback the
        frame L steps back around the chunk."""
        around = 2 * self.reach + self.chunk
        parts = [("below", self.reach), ("around", around), ("position", None)]
        parts += [("back", around)] if self.lookback else []
        columns, at = {}, 0
        for name, keys in parts:
            width = self.pos_dim if keys is None else keys * (self.key_states - 1)
            columns[name] = (slice(at, at + width), keys)
            at += width
        return columns


@dataclass
class AutoencoderConfig(EnDeCellConfig):
    architecture: str = "autoencoder"


CONFIGS = {"basic": BasicConfig, "endecell": EnDeCellConfig, "autoencoder": AutoencoderConfig}
# settings a checkpoint written before they existed does not store: what such a model was
# (its config's default then), where today's default for a new run is another
LEGACY = {"basic": {"neighbour_keys": 0}, "endecell": {"encoder_skip": False}, "autoencoder": {"encoder_skip": False}}

RENAMED = {"context_keys": "neighbour_keys"}    # an older name -> the one a setting has now


def config_from_dict(d: dict):
    """A config dataclass from its dict (as stored in a checkpoint's metadata; older names read too)."""
    d = {RENAMED.get(k, k): v for k, v in d.items()}
    d = {**LEGACY.get(d["architecture"], {}), **d}
    cls = CONFIGS[d["architecture"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainConfig:
    data: str = "jsb"
    steps_per_beat: int = 4          # for MIDI folders; benchmarks carry their own
    window: int = 64                 # steps per training window
    hop_bars: int = 1                # a window starts every hop_bars bar lines
    batch_size: int = 32
    lr: float = 2e-3
    lr_schedule: str = "cosine"      # constant | cosine (after warmup)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    epochs: int = 100
    time_budget_s: float = 0.0       # 0: no limit; else stop (and validate) after this much training time
    seed: int = 0
    # Loss weight of the early steps of a window that starts inside a song, whose state has not heard
    # what came before: none | linear (0 -> 1 along the window) | step (the first target_skip steps
    # carry no loss). A window that starts at the song's start is weighted in full: its zero state is right.
    target_weight: str = "none"
    target_skip: int = 8
    scheduled_sampling: float = 0.0  # final probability of feeding back the model's own sample
    transpose: int = 0               # augmentation: shift windows by up to +-transpose semitones
    # Weight averaging: an exponential moving average of the weights with this decay per step
    # (0: none) is what is validated and kept as best.pt; training goes on from the raw weights.
    ema: float = 0.0
    # > 0: also keep the validated weights (the average where --ema) of every snapshots-th epoch as
    # snapshot-EEEE.pt, members for a mean of one run's epochs (``livecomp eval RUN --with RUN/snapshot-...``)
    snapshots: int = 0
    device: str = "auto"
    checkpoint_every_s: float = 300.0
    sample_png: bool = True
    init_from: str = ""              # start from another run's weights (EnDeCell: also an autoencoder's)
    model: dict = field(default_factory=dict)


ENDECELL = ("endecell", "autoencoder")


@dataclass(frozen=True)
class Flag:
    """A `livecomp train` option and the setting it gives: ``field`` of the run's ``TrainConfig``,
    or with ``model`` of the model's config, for the architectures in ``families`` (all when
    None). ``optional``: left out of a printed command when empty (0 or "")."""

    option: str
    field: str
    model: bool = False
    families: tuple[str, ...] | None = None
    optional: bool = False
    shown: bool = True                 # printed in a run's command (not: where it ran)
    plain: object = None               # a value left out of a printed command: what the setting does by default

    @property
    def param(self) -> str:
        """The option's name as the command's parameter."""
        return self.option[2:].replace("-", "_")

    def applies(self, architecture: str) -> bool:
        return self.families is None or architecture in self.families


# Every setting `livecomp train` takes, once: the command reads options into configs with it
# (``configs_from_options``) and prints a run's settings back as a command (``command_line``).
FLAGS = (
    Flag("--data", "data"),
    Flag("--steps-per-beat", "steps_per_beat"),
    Flag("--key-states", "key_states", model=True),
    Flag("--hidden", "hidden", model=True, families=("basic",)),
    Flag("--hidden", "time_hidden", model=True, families=ENDECELL),
    Flag("--layers", "layers", model=True, families=("basic",)),
    Flag("--layers", "time_layers", model=True, families=ENDECELL),
    Flag("--dropout", "dropout", model=True),
    Flag("--input-dropout", "input_dropout", model=True, optional=True),
    Flag("--weight-drop", "weight_drop", model=True, optional=True),
    Flag("--neighbour-keys", "neighbour_keys", model=True),
    Flag("--mix-shifts", "mix_shifts", model=True, families=("basic",), optional=True),
    Flag("--chunk", "chunk", model=True, families=ENDECELL),
    Flag("--enc-hidden", "enc_hidden", model=True, families=ENDECELL),
    Flag("--dec-hidden", "dec_hidden", model=True, families=ENDECELL),
    Flag("--dec-dropout", "dec_dropout", model=True, families=ENDECELL, optional=True),
    Flag("--encoder-skip", "encoder_skip", model=True, families=ENDECELL),
    Flag("--lookback", "lookback", model=True, families=ENDECELL, optional=True),
    Flag("--joint-keys", "joint_keys", model=True, families=ENDECELL, plain=1),
    Flag("--link-hidden", "link_hidden", model=True, families=ENDECELL, optional=True),
    Flag("--window", "window"),
    Flag("--hop-bars", "hop_bars"),
    Flag("--batch-size", "batch_size"),
    Flag("--lr", "lr"),
    Flag("--lr-schedule", "lr_schedule"),
    Flag("--warmup", "warmup_steps"),
    Flag("--weight-decay", "weight_decay"),
    Flag("--target-weight", "target_weight"),
    Flag("--target-skip", "target_skip"),
    Flag("--scheduled-sampling", "scheduled_sampling", optional=True),
    Flag("--transpose", "transpose", optional=True),
    Flag("--ema", "ema", optional=True),
    Flag("--snapshots", "snapshots", optional=True),
    Flag("--init-from", "init_from", optional=True),
    Flag("--time-budget", "time_budget_s", optional=True),
    Flag("--epochs", "epochs"),
    Flag("--seed", "seed"),
    Flag("--device", "device", shown=False),
)


def configs_from_options(options: dict, architecture: str) -> tuple[dict, dict]:
    """The run's and the model's settings (field -> value) from the options of the command
    (parameter name -> value, already parsed: a time budget in seconds, paths as strings); an
    option left out (None) leaves the setting at its config's default."""
    run, model = {}, {}
    for flag in FLAGS:
        if flag.applies(architecture) and options.get(flag.param) is not None:     # None: left out
            (model if flag.model else run)[flag.field] = options[flag.param]
    return run, model


def _settings(cfg: TrainConfig) -> tuple[str, list[tuple[Flag, object]]]:
    """The architecture of a run's settings, and each option it sets with its value, in
    ``FLAGS``' order (the ones left out: empty where optional, or at their plain value)."""
    model = asdict(config_from_dict(cfg.model))         # older names as today's
    arch = model["architecture"]
    out = []
    for flag in FLAGS:
        if not (flag.shown and flag.applies(arch)):
            continue
        value = model.get(flag.field) if flag.model else getattr(cfg, flag.field)
        if value is None or flag.optional and not value or flag.plain is not None and value == flag.plain:
            continue
        out.append((flag, value))
    return arch, out


def command_line(cfg: TrainConfig, out: str | Path) -> str:
    """The `livecomp train` command that starts a run with these settings."""
    arch, settings = _settings(cfg)
    args = ["livecomp train", f"--model {'endecell' if arch == 'autoencoder' else arch}"]
    if arch == "autoencoder":
        args.append("--pretrain-autoencoder")
    for flag, value in settings:
        if isinstance(value, bool):
            args.append(flag.option if value else "--no-" + flag.option[2:])
        else:
            args.append(f"{flag.option} {value:g}" if isinstance(value, float) else f"{flag.option} {value}")
    return " ".join(args + [f"--out {out}"])


def recipe_text(cfg: TrainConfig, comment: str = "") -> str:
    """A recipe file (``read_recipe``) that starts a run with these settings, under ``comment``
    (each of its lines a TOML comment)."""
    arch, settings = _settings(cfg)
    lines = [f"# {line}".rstrip() for line in comment.splitlines()] + ["[train]"]
    lines.append(f'model = "{"endecell" if arch == "autoencoder" else arch}"')
    if arch == "autoencoder":
        lines.append("pretrain-autoencoder = true")
    for flag, value in settings:
        if flag.field == "time_budget_s":
            value = f"{value:g}"                                   # the option takes seconds as text
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
        lines.append(f"{flag.option[2:]} = {text}")
    return "\n".join(lines) + "\n"


def default_text(option: str) -> str:
    """``option``'s defaults as its help text says them: "default 256", or per family where they
    differ ("basic 256, endecell 128"); "" where it has none."""
    said = {}
    for flag in FLAGS:
        if flag.option != option:
            continue
        families = [("run", TrainConfig)] if not flag.model else [
            (name, cls) for name, cls in CONFIGS.items() if name != "autoencoder" and flag.applies(name)]
        for name, cls in families:
            found = {f.name: f for f in fields(cls)}.get(flag.field)
            if found is not None and found.default is not MISSING and found.default not in ("", None):
                said[name] = found.default
    if not said:
        return ""
    shown = {name: ("on" if v is True else "off" if v is False else f"{v:g}" if isinstance(v, float) else v)
             for name, v in said.items()}
    if len(set(shown.values())) == 1:
        return f"default {next(iter(shown.values()))}"
    return ", ".join(f"{name} {value}" for name, value in shown.items())


class RecipeError(ValueError):
    """A recipe file that cannot be read, said in one sentence."""


RECIPE_MAX_BYTES = 1 << 16          # a recipe is a page of settings


def read_recipe(path: str | Path) -> dict[str, object]:
    """The settings of a recipe file: a TOML file whose ``[train]`` table holds `livecomp train`'s
    options by their names without the dashes (``hidden = 512``, ``encoder-skip = true``,
    ``time-budget = "2h"``); option name (as on the command line, "--hidden") -> value.
    The values are checked as the command's options are, by the command."""
    try:
        import tomllib
    except ImportError:                          # Python 3.10: the same parser, as the tomli package
        import tomli as tomllib

    try:
        text = small_text(path, "the recipe", RECIPE_MAX_BYTES)
    except FileNotFoundError:
        raise RecipeError(f"the recipe {path} does not exist.") from None
    except TextFileError as exc:
        raise RecipeError(str(exc)) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"the recipe {path} is not valid TOML ({exc}).") from None
    if set(document) != {"train"} or not isinstance(document["train"], dict):
        raise RecipeError(f"the recipe {path} must hold one table, [train], of `livecomp train`'s options.")
    return {f"--{name}": value for name, value in document["train"].items()}
