"""Model families: the basic RNN and EnDeCell, rebuilt from their config alone."""

from __future__ import annotations

from dataclasses import fields

from .basic import BasicConfig, BasicRNN
from .endecell import AutoencoderConfig, EnDeCell, EnDeCellAutoencoder, EnDeCellConfig

__all__ = ["BasicConfig", "BasicRNN", "EnDeCellConfig", "EnDeCell", "AutoencoderConfig", "EnDeCellAutoencoder", "build_model", "config_from_dict"]

CONFIGS = {"basic": BasicConfig, "endecell": EnDeCellConfig, "autoencoder": AutoencoderConfig}
MODELS = {"basic": BasicRNN, "endecell": EnDeCell, "autoencoder": EnDeCellAutoencoder}


RENAMED = {"context_keys": "neighbour_keys"}    # an older name -> the one a setting has now


def config_from_dict(d: dict):
    """A config dataclass from its dict (as stored in a checkpoint's metadata; older names read too)."""
    d = {RENAMED.get(k, k): v for k, v in d.items()}
    cls = CONFIGS[d["architecture"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def build_model(cfg):
    return MODELS[cfg.architecture](cfg)
