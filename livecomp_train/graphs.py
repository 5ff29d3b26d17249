"""The graphs of an exported model, written as torch modules for the ONNX exporter.

``Encode`` wraps a model's own forward pass (the exporter turns its LSTM/GRU layers into ONNX
LSTM/GRU nodes over the whole sequence). ``BasicBar`` and ``EnDeCellBar`` (``endecell_bar``) are
the bar-level multi-step predictors: they sample a fixed number of steps inside one graph,
unrolled, with the model's weights rearranged so that each sequential step does as little as
possible (``codes``):

- an LSTM layer is one matrix product of [input, h] with the stacked weights, then the gates;
- EnDeCell's decoder computes, once per step and for all chunks together, the part of its
  input that is known before the step (the previous frame around each chunk, the chunk's
  position); only the keys just written below a chunk go through a small product per chunk;
- the log-probability of the bar is computed once from all the logits at the end.

They compute the same function as ``model.sample`` (same weights, same inverse-CDF draw), so
for the same noise they return the same frames; ``livecomp_train/export.py`` checks that.
``EnsembleBar`` and ``EnsembleAdvance`` are the same pieces for an ensemble of EnDeCell runs,
the runs' decoders stepping chunk by chunk in lockstep on the draws from their mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .codes import LSTMNodes, Sampler, codes_of, expand_noise, from_one_hot, frozen, graph_state, states_of, torch_state
from .endecell_bar import EnDeCellBar, EnsembleBar
from .models.basic import BasicRNN
from .models.common import N_KEYS, tempered_log_prob
from .models.endecell import EnDeCell
from .models.ensemble import Ensemble


class Encode(nn.Module):
    """frames (B, T, 88) int64 + state -> logits (B, T, 88, K) + state after the frames."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.eval()          # the exporter restores the wrapper's mode onto the model afterwards

    def forward(self, frames: torch.Tensor, *state: torch.Tensor):
        logits, new_state = self.model(frames, torch_state(self.model, state))
        return (logits,) + graph_state(new_state)


class BasicAdvance(nn.Module):
    """The basic RNN's advance graph in few nodes: codes of the frames, one LSTM node per layer
    over all the steps (seq-first, so no transposes of the sequence)."""

    def __init__(self, model: BasicRNN):
        super().__init__()
        self.model = model
        self.K = model.cfg.key_states
        lstm = model.lstm
        self.lstm = nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers)
        self.lstm.load_state_dict(lstm.state_dict())
        self.requires_grad_(False)
        self.eval()

    def forward(self, frames, h, c, prev=None):
        steps = frames.transpose(0, 1)                                           # (T, B, 88)
        codes = (steps.unsqueeze(-1) == torch.arange(1, self.K)).float().flatten(2)
        _, (h, c) = self.lstm(codes, (h.transpose(0, 1), c.transpose(0, 1)))
        state = (h.transpose(0, 1), c.transpose(0, 1))
        return state + ((frames[:, -1].float(),) if self.model.neighbours is not None else ())


class EnDeCellAdvance(nn.Module):
    """EnDeCell's advance graph (the state after frames, no scores) in few nodes: the encoder
    reads every frame's chunks in one GRU node (positions added as a constant, not concatenated
    per row), the time LSTM runs over the steps in one LSTM node per layer."""

    def __init__(self, model: EnDeCell):
        super().__init__()
        self.model = model
        cfg = model.cfg
        self.K, k1 = cfg.key_states, cfg.key_states - 1
        self.code = cfg.chunk * k1
        self.pad = (cfg.padded_keys - N_KEYS) * k1
        positions = F.pad(model.position.weight.detach(), (self.code, 0))          # (C, code + P)
        self.register_buffer("positions", positions.clone())
        self.encoder = nn.GRU(model.encoder.input_size, cfg.enc_hidden)           # seq-first
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self.encoder, f"{kind}_l0").data.copy_(getattr(model.encoder, f"{kind}_l0").detach())
        self.time = nn.LSTM(cfg.enc_hidden, cfg.time_hidden, cfg.time_layers)    # seq-first
        self.time.load_state_dict(model.time.state_dict())
        self.requires_grad_(False)
        self.eval()

    def forward(self, frames, h, c, prev=None, hist=None):
        m, cfg = self.model, self.model.cfg
        steps = frames.transpose(0, 1)                                           # (T, B, 88)
        codes = (steps.unsqueeze(-1) == torch.arange(1, self.K)).float().reshape(-1, N_KEYS * (self.K - 1))
        x = F.pad(codes, (0, self.pad)).reshape(-1, cfg.n_chunks, self.code)     # (T B, C, code)
        x = F.pad(x, (0, cfg.pos_dim)) + self.positions                          # (T B, C, code + P)
        _, vectors = self.encoder(x.transpose(0, 1))                             # (1, T B, E)
        if m.encoder_skip is not None:
            vectors = vectors + m.encoder_skip(codes)
        vectors = vectors.reshape(steps.shape[0], -1, cfg.enc_hidden)            # (T, B, E)
        _, (h, c) = self.time(vectors, (h.transpose(0, 1), c.transpose(0, 1)))
        state = (h.transpose(0, 1), c.transpose(0, 1), frames[:, -1].float())
        if hist is None:
            return state
        return state + (torch.cat([hist, frames.float()], 1)[:, -cfg.lookback:],)   # the last L frames


class BasicBar(nn.Module):
    """state, temperature [], noise (B, S, 88) -> frames (B, S, 88), logp (B,), state after.

    The key classifiers and the previous-frame convolution are one product of [h, codes of the
    previous frame] (the convolution unrolled into its banded matrix)."""

    def __init__(self, model: BasicRNN, steps: int):
        super().__init__()
        self.model = model
        self.steps = steps
        self.K = K = model.cfg.key_states
        self.cells = LSTMNodes(model.lstm)
        first = self.cells.layers[0].weight_ih_l0
        first.data.copy_(from_one_hot(first.data, N_KEYS, K))                  # it reads thermometer codes
        self.sampler = Sampler(K, N_KEYS)
        w, b = model.head.weight.detach().t(), model.head.bias.detach()    # (H, 88 K), (88 K)
        self.has_prev = model.neighbours is not None
        if self.has_prev:
            basis = torch.eye(N_KEYS * (K - 1)).view(-1, N_KEYS, K - 1).transpose(1, 2)   # (88 (K-1), K-1, 88)
            with torch.no_grad():
                conv = model.neighbours(basis) - model.neighbours.bias.view(1, -1, 1)   # (88 (K-1), K, 88)
            band = conv.transpose(1, 2).reshape(N_KEYS * (K - 1), N_KEYS * K)
            w = torch.cat([w, from_one_hot(band.t(), N_KEYS, K).t()], 0)
            b = b + model.neighbours.bias.detach().repeat(N_KEYS)
        self.w_head = frozen(w)
        self.b_head = frozen(b)
        self.eval()

    def forward(self, *inputs: torch.Tensor):
        h, c = inputs[0], inputs[1]
        temperature, noise = inputs[-2], inputs[-1]
        K, layers = self.K, h.shape[1]
        hs = [h[:, i].unsqueeze(0) for i in range(layers)]          # (1, B, H): the LSTM node's layout
        cs = [c[:, i].unsqueeze(0) for i in range(layers)]
        codes = codes_of(inputs[2], K).unsqueeze(0) if self.has_prev else None
        w_head, b_head = self.w_head / temperature, self.b_head / temperature       # tempered scores
        noise = expand_noise(noise, K).unbind(1)
        all_codes, all_scores = [], []
        for s in range(self.steps):
            top = torch.cat([hs[-1], codes], -1) if self.has_prev else hs[-1]
            scores = (top @ w_head + b_head).reshape(-1, N_KEYS, K)
            codes = self.sampler(scores, noise[s])                  # (1, B, 88 (K-1))
            all_codes.append(codes)
            all_scores.append(scores)
            hs, cs = self.cells(codes, hs, cs)
        frames = states_of(torch.cat(all_codes, 0).transpose(0, 1), K).long()
        logp = tempered_log_prob(torch.stack(all_scores, 1), frames).sum(-1)
        state = (torch.cat(hs, 0).transpose(0, 1), torch.cat(cs, 0).transpose(0, 1))
        return (frames, logp) + state + ((frames[:, -1].float(),) if self.has_prev else ())


class EnsembleAdvance(nn.Module):
    """An ensemble of EnDeCell runs' advance graph: each run's ``EnDeCellAdvance``, their time
    LSTMs' states side by side."""

    def __init__(self, model: Ensemble):
        super().__init__()
        self.runs = nn.ModuleList(EnDeCellAdvance(member) for member in model.members)
        self.sizes = list(model.sizes)
        self.eval()

    def forward(self, frames, h, c, prev=None, hist=None):
        after = [run(frames, hm, cm, prev, hist) for run, hm, cm in zip(self.runs, h.split(self.sizes, -1),
                                                                         c.split(self.sizes, -1))]
        return (torch.cat([a[0] for a in after], -1), torch.cat([a[1] for a in after], -1)) + tuple(after[0][2:])


class ModelAdvance(nn.Module):
    """The model's own ``advance`` as the advance graph (a basic RNN's mixture of transposed copies)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, frames: torch.Tensor, *state: torch.Tensor):
        return graph_state(self.model.advance(frames, torch_state(self.model, state)))


class ModelBar(nn.Module):
    """The model's own ``sample`` as the bar graph, unrolled by the exporter: what a basic RNN's
    mixture of transposed copies uses, whose draws first pick a copy (``BasicRNN.sample``)."""

    def __init__(self, model: nn.Module, steps: int):
        super().__init__()
        self.model = model
        self.steps = steps
        self.eval()

    def forward(self, *inputs: torch.Tensor):
        *state, temperature, noise = inputs
        frames, logp, after = self.model.sample(torch_state(self.model, tuple(state)), noise, temperature)
        return (frames, logp) + graph_state(after)


def _mixture(model: nn.Module) -> bool:
    return isinstance(model, BasicRNN) and model.cfg.mix_shifts > 0


def advance_module(model: nn.Module) -> nn.Module:
    if isinstance(model, Ensemble):
        return EnsembleAdvance(model)
    if _mixture(model):
        return ModelAdvance(model)
    return EnDeCellAdvance(model) if isinstance(model, EnDeCell) else BasicAdvance(model)


def bar_module(model: nn.Module, steps: int) -> nn.Module:
    if isinstance(model, Ensemble):
        return EnsembleBar(model, steps)
    if _mixture(model):
        return ModelBar(model, steps)
    return EnDeCellBar(model, steps) if isinstance(model, EnDeCell) else BasicBar(model, steps)
