"""The two graphs of an exported model, written as torch modules for the ONNX exporter.

``Encode`` wraps a model's own forward pass (the exporter turns its LSTM/GRU layers into ONNX
LSTM/GRU nodes over the whole sequence). ``BasicBar`` and ``EnDeCellBar`` are the bar-level
multi-step predictors: they sample a fixed number of steps inside one graph, unrolled, with
the model's weights rearranged so that each sequential step does as little as possible:

- an LSTM layer is one matrix product of [input, h] with the stacked weights, then the gates;
- EnDeCell's decoder computes, once per step and for all chunks together, the part of its
  input that is known before the step (the previous frame around each chunk, the chunk's
  position); only the keys just written below a chunk go through a small product per chunk;
- the log-probability of the bar is computed once from all the logits at the end.

They compute the same function as ``model.sample`` (same weights, same inverse-CDF draw), so
for the same noise they return the same frames; ``training/export.py`` checks that.

State tensors are batch-first here (``[B] + shape`` as in model.json), float32; the previous
frame travels as float key states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models.basic import BasicRNN
from .models.common import N_KEYS, tempered_log_prob
from .models.endecell import EnDeCell


def _torch_state(model, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Batch-first float state (as the graphs take it) -> the model's own layout."""
    h, c, *rest = state
    out = (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous())
    return out + tuple(r.long() for r in rest)


def _graph_state(state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    h, c, *rest = state
    return (h.transpose(0, 1), c.transpose(0, 1)) + tuple(r.float() for r in rest)


class Encode(nn.Module):
    """frames (B, T, 88) int64 + state -> logits (B, T, 88, K) + state after the frames.

    With ``logits=False`` only the state: the graph a listener runs every step, which skips
    the scores (for EnDeCell a whole teacher-forced decoder pass) that only evaluation needs.
    """

    def __init__(self, model: nn.Module, logits: bool = True):
        super().__init__()
        self.model = model
        self.logits = logits
        self.eval()          # the exporter restores the wrapper's mode onto the model afterwards

    def forward(self, frames: torch.Tensor, *state: torch.Tensor):
        st = _torch_state(self.model, state)
        if not self.logits:
            return _graph_state(self.model.advance(frames, st))
        logits, new_state = self.model(frames, st)
        return (logits,) + _graph_state(new_state)


def _codes_of(states: torch.Tensor, key_states: int) -> torch.Tensor:
    """Key states (B, n) (int or float) -> one-hot codes (B, n (K - 1)), as ``one_hot_states``."""
    codes = states.unsqueeze(-1) == torch.arange(1, key_states, dtype=states.dtype)
    return codes.float().reshape(states.shape[0], -1)


class _Sampler(nn.Module):
    """Inverse-CDF draws of ``keys`` keys in a few nodes, on flat one-hot codes.

    scores (B, keys, K) tempered, noise (B, keys (K-1)) (each key's uniform repeated K-1 times)
    -> codes (B, keys (K-1)). The CDF is one product with a triangular matrix; comparing it
    with the noise gives each key's thermometer code [state >= 1, state >= 2], and one more
    product (block diagonal) turns that into the one-hot code. All shapes are constants.
    """

    def __init__(self, key_states: int, keys: int):
        super().__init__()
        K = self.K = key_states
        self.keys = keys
        self.register_buffer("cdf", torch.triu(torch.ones(K, K))[:, :K - 1].contiguous())   # p -> P(state <= k)
        thermo_to_code = (torch.eye(K - 1) - torch.diag(torch.ones(K - 2), 1)).t().contiguous()         # identity for K = 2
        self.register_buffer("to_code", torch.kron(torch.eye(keys), thermo_to_code).contiguous())

    def forward(self, scores: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        cdf = (torch.softmax(scores, -1) @ self.cdf).reshape(-1, self.keys * (self.K - 1))
        above = (cdf <= noise).float()
        return above @ self.to_code if self.K > 2 else above


def _expand_noise(noise: torch.Tensor, key_states: int) -> torch.Tensor:
    """noise (B, S, 88) -> (B, S, 88 (K-1)): each key's uniform once per thermometer bit."""
    if key_states == 2:
        return noise
    return noise.unsqueeze(-1).expand(-1, -1, -1, key_states - 1).reshape(-1, noise.shape[1], N_KEYS * (key_states - 1))


def _states_of(codes: torch.Tensor, key_states: int) -> torch.Tensor:
    """codes (..., 88 (K-1)) -> key states (..., 88) float: one product with a block matrix."""
    values = torch.kron(torch.eye(N_KEYS), torch.arange(1, key_states, dtype=torch.float32).unsqueeze(1))
    return codes @ values


def _frozen(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().contiguous().clone(), requires_grad=False)


class _LSTMStack(nn.Module):
    """An nn.LSTM's layers as explicit cells for one step: one product of [input, h] with the
    stacked weights, gates reordered to (i, f, o, g) so one sigmoid covers three of them."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        H = lstm.hidden_size
        order = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])
        for layer in range(lstm.num_layers):
            w = torch.cat([getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")], 1)
            b = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
            self.weights.append(_frozen(w[order].t()))
            self.biases.append(_frozen(b[order]))
        self.H = H

    def forward(self, x: torch.Tensor, hs: list[torch.Tensor], cs: list[torch.Tensor]):
        new_h, new_c = [], []
        H = self.H
        for w, b, h, c in zip(self.weights, self.biases, hs, cs):
            gates = torch.cat([x, h], -1) @ w + b
            ifo, g = gates.split([3 * H, H], -1)
            i, f, o = torch.sigmoid(ifo).split([H, H, H], -1)
            c = f * c + i * torch.tanh(g)
            h = o * torch.tanh(c)
            new_h.append(h)
            new_c.append(c)
            x = h
        return new_h, new_c


class BasicBar(nn.Module):
    """state, temperature [], noise (B, S, 88) -> frames (B, S, 88), logp (B,), state after.

    The key classifiers and the previous-frame convolution are one product of [h, codes of the
    previous frame] (the convolution unrolled into its banded matrix)."""

    def __init__(self, model: BasicRNN, steps: int):
        super().__init__()
        self.model = model
        self.steps = steps
        self.K = K = model.cfg.key_states
        self.cells = _LSTMStack(model.lstm)
        self.sampler = _Sampler(K, N_KEYS)
        w, b = model.head.weight.detach().t(), model.head.bias.detach()    # (H, 88 K), (88 K)
        self.has_prev = model.neighbours is not None
        if self.has_prev:
            basis = torch.eye(N_KEYS * (K - 1)).view(-1, N_KEYS, K - 1).transpose(1, 2)   # (88 (K-1), K-1, 88)
            with torch.no_grad():
                conv = model.neighbours(basis) - model.neighbours.bias.view(1, -1, 1)   # (88 (K-1), K, 88)
            band = conv.transpose(1, 2).reshape(N_KEYS * (K - 1), N_KEYS * K)
            w = torch.cat([w, band], 0)
            b = b + model.neighbours.bias.detach().repeat(N_KEYS)
        self.w_head = _frozen(w)
        self.b_head = _frozen(b)
        self.eval()

    def forward(self, *inputs: torch.Tensor):
        h, c = inputs[0], inputs[1]
        temperature, noise = inputs[-2], inputs[-1]
        K, layers = self.K, h.shape[1]
        hs = [h[:, i] for i in range(layers)]
        cs = [c[:, i] for i in range(layers)]
        codes = _codes_of(inputs[2], K) if self.has_prev else None
        w_head, b_head = self.w_head / temperature, self.b_head / temperature       # tempered scores
        noise = _expand_noise(noise, K).unbind(1)
        all_codes, all_scores = [], []
        for s in range(self.steps):
            top = torch.cat([hs[-1], codes], -1) if self.has_prev else hs[-1]
            scores = (top @ w_head + b_head).reshape(-1, N_KEYS, K)
            codes = self.sampler(scores, noise[s])
            all_codes.append(codes)
            all_scores.append(scores)
            hs, cs = self.cells(codes, hs, cs)
        frames = _states_of(torch.stack(all_codes, 1), K).long()
        logp = tempered_log_prob(torch.stack(all_scores, 1), frames).sum(-1)
        state = (torch.stack(hs, 1), torch.stack(cs, 1)) + ((frames[:, -1].float(),) if self.has_prev else ())
        return (frames, logp) + state


class EnDeCellBar(nn.Module):
    """state (h, c, prev), temperature [], noise (B, S, 88) -> frames, logp (B,), state after.

    Per decoder step (one chunk) the graph does one product of [decoder state, codes of the keys
    just below] with a block matrix that yields the GRU's summed r/z pre-activations, the input
    and the hidden parts of its candidate, adds the part known before the frame (previous frame
    around the chunk, position, biases: one product per frame for all chunks), applies the
    gates, scores the chunk and draws it."""

    def __init__(self, model: EnDeCell, steps: int):
        super().__init__()
        self.model = model
        self.steps = steps
        cfg = model.cfg
        self.K = K = cfg.key_states
        self.time = _LSTMStack(model.time)
        self.sampler = _Sampler(K, cfg.chunk)
        H, k1 = cfg.dec_hidden, K - 1
        n_below, n_around = cfg.reach * k1, (2 * cfg.reach + cfg.chunk) * k1
        w_ih, w_hh = model.decoder.weight_ih_l0.detach(), model.decoder.weight_hh_l0.detach()   # (3H, D), (3H, H)
        b_ih, b_hh = model.decoder.bias_ih_l0.detach(), model.decoder.bias_hh_l0.detach()
        w_below, w_around = w_ih[:, :n_below], w_ih[:, n_below:n_below + n_around]
        w_pos = w_ih[:, n_below + n_around:]
        # [h, below] @ big -> [r/z pre-activation (2H), candidate input part (H), candidate hidden part (H)]
        big = torch.zeros(H + n_below, 4 * H)
        big[:H, :2 * H] = w_hh[:2 * H].t()
        big[:H, 3 * H:] = w_hh[2 * H:].t()
        big[H:, :2 * H] = w_below[:2 * H].t()
        big[H:, 2 * H:3 * H] = w_below[2 * H:].t()
        self.w_step = _frozen(big)
        known = torch.zeros(n_around, 4 * H)
        known[:, :3 * H] = w_around.t()
        self.w_known = _frozen(known)
        const = torch.zeros(cfg.n_chunks, 4 * H)
        const[:, :3 * H] = model.position.weight.detach() @ w_pos.t() + b_ih
        const[:, :2 * H] += b_hh[:2 * H]
        const[:, 3 * H:] = b_hh[2 * H:]
        self.known_const = _frozen(const)                                   # (C, 4H)
        self.w_head = _frozen(model.head.weight.detach().t())               # (H, c K)
        self.b_head = _frozen(model.head.bias.detach())
        # codes of the previous frame -> for each chunk the codes of the keys around it
        r, c = cfg.reach, cfg.chunk
        around = (torch.arange(cfg.n_chunks).unsqueeze(1) * c + torch.arange(2 * r + c)) * k1
        self.register_buffer("around_codes", (around.unsqueeze(-1) + torch.arange(k1)).reshape(cfg.n_chunks, -1))
        self.pad_codes = (r * k1, (cfg.padded_keys - N_KEYS + r) * k1)
        self.eval()

    def _encode(self, codes: torch.Tensor) -> torch.Tensor:
        """The encoder's vector of a frame given as codes (B, 88 (K-1)), as ``encode_frames``."""
        m, cfg = self.model, self.model.cfg
        padded = F.pad(codes, (0, (cfg.padded_keys - N_KEYS) * (self.K - 1)))
        x = padded.reshape(-1, cfg.n_chunks, cfg.chunk * (self.K - 1))
        x = torch.cat([x, m.position.weight.unsqueeze(0).expand(x.shape[0], -1, -1)], -1)
        _, h = m.encoder(x)
        vector = h[-1]
        return vector if m.encoder_skip is None else vector + m.encoder_skip(codes)

    def _write(self, context, prev_codes, noise, w_head, inv_t):
        """One frame per row, chunk by chunk: (codes (B, 88 (K-1)), tempered scores (B, 88, K)).
        noise (B, 88 (K-1)) as ``_expand_noise`` gives it."""
        m, cfg = self.model, self.model.cfg
        H, K, c, C = cfg.dec_hidden, self.K, cfg.chunk, cfg.n_chunks
        k1 = K - 1
        n_below = cfg.reach * k1
        dec_h = torch.tanh(m.dec_init(context))
        head_bias = (m.dec_context(context) @ self.w_head + self.b_head) * inv_t        # (B, c K)
        around = F.pad(prev_codes, self.pad_codes)[:, self.around_codes]                 # (B, C, n_around)
        known = (around @ self.w_known + self.known_const).reshape(-1, C * 4 * H).split(4 * H, 1)
        noise = F.pad(noise, (0, (cfg.padded_keys - N_KEYS) * k1)).split(c * k1, 1)
        below = torch.zeros_like(prev_codes[:, :n_below])
        codes, scores = [], []
        for j in range(C):
            pre = torch.cat([dec_h, below], -1) @ self.w_step + known[j]
            rz, cand_in, cand_h = pre.split([2 * H, H, H], -1)
            reset, update = torch.sigmoid(rz).split([H, H], -1)
            n = torch.tanh(cand_in + reset * cand_h)
            dec_h = n + update * (dec_h - n)
            chunk_scores = (dec_h @ w_head + head_bias).reshape(-1, c, K)
            chunk_codes = self.sampler(chunk_scores, noise[j])
            codes.append(chunk_codes)
            scores.append(chunk_scores)
            if j + 1 < C:
                below = torch.cat([below, chunk_codes], -1)[:, -n_below:]
        return torch.cat(codes, -1)[:, :N_KEYS * k1], torch.cat(scores, 1)[:, :N_KEYS]

    def forward(self, h, c, prev, temperature, noise):
        K, layers = self.K, h.shape[1]
        hs = [h[:, i] for i in range(layers)]
        cs = [c[:, i] for i in range(layers)]
        codes = _codes_of(prev, K)
        inv_t = 1.0 / temperature
        w_head = self.w_head * inv_t
        noise = _expand_noise(noise, K).unbind(1)
        all_codes, all_scores = [], []
        for s in range(self.steps):
            codes, scores = self._write(hs[-1], codes, noise[s], w_head, inv_t)
            all_codes.append(codes)
            all_scores.append(scores)
            hs, cs = self.time(self._encode(codes), hs, cs)
        frames = _states_of(torch.stack(all_codes, 1), K).long()
        logp = tempered_log_prob(torch.stack(all_scores, 1), frames).sum(-1)
        return frames, logp, torch.stack(hs, 1), torch.stack(cs, 1), frames[:, -1].float()


def bar_module(model: nn.Module, steps: int) -> nn.Module:
    return EnDeCellBar(model, steps) if isinstance(model, EnDeCell) else BasicBar(model, steps)
