"""Model families: the basic RNN and EnDeCell, rebuilt from their config alone."""

from __future__ import annotations

from ..configs import CONFIGS, AutoencoderConfig, BasicConfig, EnDeCellConfig, config_from_dict
from .basic import BasicRNN
from .endecell import EnDeCell, EnDeCellAutoencoder

__all__ = ["BasicConfig", "BasicRNN", "EnDeCellConfig", "EnDeCell", "AutoencoderConfig", "EnDeCellAutoencoder",
           "CONFIGS", "build_model", "config_from_dict"]

MODELS = {"basic": BasicRNN, "endecell": EnDeCell, "autoencoder": EnDeCellAutoencoder}


def build_model(cfg):
    return MODELS[cfg.architecture](cfg)
