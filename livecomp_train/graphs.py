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
for the same noise they return the same frames; ``livecomp_train/export.py`` checks that.
``EnsembleBar`` and ``EnsembleAdvance`` are the same pieces for an ensemble of EnDeCell runs,
the runs' decoders stepping chunk by chunk in lockstep on the draws from their mean.

State tensors are batch-first here (``[B] + shape`` as in model.json), float32; the previous
frame travels as float key states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models.basic import BasicRNN
from .models.common import N_KEYS, tempered_log_prob
from .models.endecell import EnDeCell, mean_conditional
from .models.ensemble import Ensemble


def _torch_state(model, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Batch-first float state (as the graphs take it) -> the model's own layout."""
    h, c, *rest = state
    out = (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous())
    return out + tuple(r.long() for r in rest)


def _graph_state(state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    h, c, *rest = state
    return (h.transpose(0, 1), c.transpose(0, 1)) + tuple(r.float() for r in rest)


class Encode(nn.Module):
    """frames (B, T, 88) int64 + state -> logits (B, T, 88, K) + state after the frames."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.eval()          # the exporter restores the wrapper's mode onto the model afterwards

    def forward(self, frames: torch.Tensor, *state: torch.Tensor):
        logits, new_state = self.model(frames, _torch_state(self.model, state))
        return (logits,) + _graph_state(new_state)


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


def _codes_of(states: torch.Tensor, key_states: int) -> torch.Tensor:
    """Key states (B, n) (int or float) -> thermometer codes (B, n (K - 1)): per key
    [state >= 1, state >= 2]. The bar graphs carry keys in this code, because the sampler's
    comparisons produce it directly; the weights that read it are rewritten to match
    (``_from_one_hot``), so the model computes what it computed on one-hot codes."""
    codes = states.unsqueeze(-1) >= torch.arange(1, key_states, dtype=states.dtype)
    return codes.float().reshape(states.shape[0], -1)


def _from_one_hot(weight: torch.Tensor, keys: int, key_states: int) -> torch.Tensor:
    """Columns of ``weight`` (out, keys (K-1)) that read one-hot codes -> the same map on
    thermometer codes: one-hot = M @ thermometer per key, M = [[1, -1], [0, 1]] for K = 3."""
    k1 = key_states - 1
    m = torch.eye(k1) - torch.diag(torch.ones(k1 - 1), 1)
    return weight @ torch.kron(torch.eye(keys), m)


class _Sampler(nn.Module):
    """Inverse-CDF draws of ``keys`` keys in a few nodes.

    scores (..., keys, K) tempered, noise (B, keys (K-1)) (each key's uniform repeated K-1
    times) -> thermometer codes (1, B, keys (K-1)): the CDF is one product with a triangular
    matrix, and comparing it with the noise gives [state >= 1, state >= 2] for each key.
    All shapes are constants.
    """

    def __init__(self, key_states: int, keys: int):
        super().__init__()
        K = self.K = key_states
        self.keys = keys
        self.register_buffer("cdf", torch.triu(torch.ones(K, K))[:, :K - 1].contiguous())   # p -> P(state <= k)

    def forward(self, scores: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        cdf = (torch.softmax(scores, -1) @ self.cdf).reshape(1, -1, self.keys * (self.K - 1))
        return (cdf <= noise).float()


class _JointSampler(nn.Module):
    """Inverse-CDF draws of one group of n keys as one choice among its K^n states.

    scores (1, B, K^n) tempered, noise (B, 1) (the group's lowest key's uniform) -> thermometer
    codes (1, B, n (K-1)) of the class drawn: the CDF is one product with a triangular matrix,
    the classes it passes are a prefix of ones, and one product of that prefix with the steps
    between consecutive classes' codes is the drawn class's codes. As ``draw_states`` over the
    classes.
    """

    def __init__(self, key_states: int, keys: int):
        super().__init__()
        K, n = key_states, keys
        classes = K ** n
        self.register_buffer("cdf", torch.triu(torch.ones(classes, classes))[:, :classes - 1].contiguous())
        states = torch.div(torch.arange(classes).unsqueeze(-1), K ** torch.arange(n), rounding_mode="floor") % K
        codes = _codes_of(states, K)                                          # (classes, n (K-1))
        self.register_buffer("steps", (codes[1:] - codes[:-1]).contiguous())  # class j -> j + 1
        self.register_buffer("powers", (K ** torch.arange(n)).float().repeat_interleave(K - 1))   # codes -> class

    def forward(self, scores: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        passed = (torch.softmax(scores, -1) @ self.cdf <= noise).float()   # (1, B, classes - 1)
        return passed @ self.steps

    def classes_of(self, codes: torch.Tensor) -> torch.Tensor:
        """Thermometer codes (..., n (K-1)) -> the class they code (...) int64: each bit adds K^i."""
        return (codes @ self.powers).long()


def _expand_noise(noise: torch.Tensor, key_states: int) -> torch.Tensor:
    """noise (B, S, 88) -> (B, S, 88 (K-1)): each key's uniform once per thermometer bit."""
    if key_states == 2:
        return noise
    return noise.unsqueeze(-1).expand(-1, -1, -1, key_states - 1).reshape(-1, noise.shape[1], N_KEYS * (key_states - 1))


def _states_of(codes: torch.Tensor, key_states: int) -> torch.Tensor:
    """Thermometer codes (..., 88 (K-1)) -> key states (..., 88) float: the bits summed."""
    return codes @ torch.kron(torch.eye(N_KEYS), torch.ones(key_states - 1, 1))


def _frozen(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().contiguous().clone(), requires_grad=False)


class _LSTMNodes(nn.Module):
    """An nn.LSTM's layers as one ONNX LSTM node each per step (the runtime's fused kernel does
    both products and the gates), states kept as (1, B, H) so no reshaping sits between steps."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.layers = nn.ModuleList()
        for layer in range(lstm.num_layers):
            cell = nn.LSTM(lstm.input_size if layer == 0 else lstm.hidden_size, lstm.hidden_size)
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, f"{kind}_l0").data.copy_(getattr(lstm, f"{kind}_l{layer}").detach())
            cell.requires_grad_(False)
            self.layers.append(cell)

    def forward(self, x: torch.Tensor, hs: list[torch.Tensor], cs: list[torch.Tensor]):
        """x (1, B, D), hs and cs lists of (1, B, H) -> new hs, cs."""
        new_h, new_c = [], []
        for cell, h, c in zip(self.layers, hs, cs):
            _, (h, c) = cell(x, (h, c))
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
        self.cells = _LSTMNodes(model.lstm)
        first = self.cells.layers[0].weight_ih_l0
        first.data.copy_(_from_one_hot(first.data, N_KEYS, K))                  # it reads thermometer codes
        self.sampler = _Sampler(K, N_KEYS)
        w, b = model.head.weight.detach().t(), model.head.bias.detach()    # (H, 88 K), (88 K)
        self.has_prev = model.neighbours is not None
        if self.has_prev:
            basis = torch.eye(N_KEYS * (K - 1)).view(-1, N_KEYS, K - 1).transpose(1, 2)   # (88 (K-1), K-1, 88)
            with torch.no_grad():
                conv = model.neighbours(basis) - model.neighbours.bias.view(1, -1, 1)   # (88 (K-1), K, 88)
            band = conv.transpose(1, 2).reshape(N_KEYS * (K - 1), N_KEYS * K)
            w = torch.cat([w, _from_one_hot(band.t(), N_KEYS, K).t()], 0)
            b = b + model.neighbours.bias.detach().repeat(N_KEYS)
        self.w_head = _frozen(w)
        self.b_head = _frozen(b)
        self.eval()

    def forward(self, *inputs: torch.Tensor):
        h, c = inputs[0], inputs[1]
        temperature, noise = inputs[-2], inputs[-1]
        K, layers = self.K, h.shape[1]
        hs = [h[:, i].unsqueeze(0) for i in range(layers)]          # (1, B, H): the LSTM node's layout
        cs = [c[:, i].unsqueeze(0) for i in range(layers)]
        codes = _codes_of(inputs[2], K).unsqueeze(0) if self.has_prev else None
        w_head, b_head = self.w_head / temperature, self.b_head / temperature       # tempered scores
        noise = _expand_noise(noise, K).unbind(1)
        all_codes, all_scores = [], []
        for s in range(self.steps):
            top = torch.cat([hs[-1], codes], -1) if self.has_prev else hs[-1]
            scores = (top @ w_head + b_head).reshape(-1, N_KEYS, K)
            codes = self.sampler(scores, noise[s])                  # (1, B, 88 (K-1))
            all_codes.append(codes)
            all_scores.append(scores)
            hs, cs = self.cells(codes, hs, cs)
        frames = _states_of(torch.cat(all_codes, 0).transpose(0, 1), K).long()
        logp = tempered_log_prob(torch.stack(all_scores, 1), frames).sum(-1)
        state = (torch.cat(hs, 0).transpose(0, 1), torch.cat(cs, 0).transpose(0, 1))
        return (frames, logp) + state + ((frames[:, -1].float(),) if self.has_prev else ())


class EnDeCellBar(nn.Module):
    """state (h, c, prev), temperature [], noise (B, S, 88) -> frames, logp (B,), state after.

    Each decoder step (one chunk) is one ONNX GRU node over [codes of the keys just written
    below the chunk, codes of the previous frame around it, the chunk's position] (the inputs
    known before the frame are cut for all chunks at once), then the chunk's scores and draw.
    The time LSTM is one LSTM node per layer and step, the encoder one GRU node over the chunks.
    Recurrent states stay in the nodes' (1, B, H) layout between steps."""

    def __init__(self, model: EnDeCell, steps: int):
        super().__init__()
        self.model = model
        self.steps = steps
        cfg = model.cfg
        self.K = K = cfg.key_states
        self.time = _LSTMNodes(model.time)
        self.decoder = nn.GRU(model.decoder.input_size, cfg.dec_hidden)        # seq-first: no transposes
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self.decoder, f"{kind}_l0").data.copy_(getattr(model.decoder, f"{kind}_l0").detach())
        w = self.decoder.weight_ih_l0.data                                  # the model's decoder_columns
        layout = cfg.decoder_columns()
        assert list(layout)[:3] == ["below", "around", "position"]          # as ``_write`` puts them together
        for columns, keys in layout.values():
            if keys is not None:                                            # key codes: read as thermometer codes
                w[:, columns] = _from_one_hot(w[:, columns], keys, K)
        self.encoder = nn.GRU(model.encoder.input_size, cfg.enc_hidden, batch_first=True)
        self.encoder.load_state_dict(model.encoder.state_dict())
        w = self.encoder.weight_ih_l0.data                                  # [chunk code, position] columns
        w[:, :cfg.chunk * (K - 1)] = _from_one_hot(w[:, :cfg.chunk * (K - 1)], cfg.chunk, K)
        self.skip = None
        if model.encoder_skip is not None:
            self.skip = nn.Linear(N_KEYS * (K - 1), cfg.enc_hidden)
            self.skip.load_state_dict(model.encoder_skip.state_dict())
            self.skip.weight.data.copy_(_from_one_hot(self.skip.weight.data, N_KEYS, K))
        self.requires_grad_(False)
        self.joint = model.link is not None
        self.sampler = _JointSampler(K, cfg.joint_keys) if self.joint else _Sampler(K, cfg.chunk)
        self.w_head = _frozen(model.head.weight.detach().t())               # (H, c K) or (H, G K^n)
        self.b_head = _frozen(model.head.bias.detach())
        if self.joint:              # group q's scores from the codes of the groups below it: (q n (K-1), K^n)
            linked = _from_one_hot(model.link.weight.detach() * model.link_mask, cfg.chunk, K).t()
            width, classes = cfg.joint_keys * (K - 1), cfg.classes
            self.links = nn.ParameterList(_frozen(linked[:q * width, q * classes:(q + 1) * classes])
                                          for q in range(1, cfg.groups))
        self.register_buffer("positions", model.position.weight.detach().clone().unsqueeze(1))   # (C, 1, P)
        # codes of the previous frame -> for each chunk the codes of the keys around it
        k1, r, c = K - 1, cfg.reach, cfg.chunk
        around = (torch.arange(cfg.n_chunks).unsqueeze(1) * c + torch.arange(2 * r + c)) * k1
        self.register_buffer("around_codes", (around.unsqueeze(-1) + torch.arange(k1)).reshape(cfg.n_chunks, -1))
        self.pad_codes = (r * k1, (cfg.padded_keys - N_KEYS + r) * k1)
        self.eval()

    def _encode(self, codes: torch.Tensor) -> torch.Tensor:
        """The encoder's vector (1, B, E) of a frame given as codes (1, B, 88 (K-1)), as ``encode_frames``."""
        m, cfg = self.model, self.model.cfg
        padded = F.pad(codes, (0, (cfg.padded_keys - N_KEYS) * (self.K - 1)))
        x = padded.reshape(-1, cfg.n_chunks, cfg.chunk * (self.K - 1))
        x = torch.cat([x, m.position.weight.unsqueeze(0).expand(x.shape[0], -1, -1)], -1)
        _, h = self.encoder(x)
        return h if self.skip is None else h + self.skip(codes)

    def _around(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes of a frame (1, B, 88 (K-1)) -> the codes around each chunk (C, B, n_around)."""
        return F.pad(codes[0], self.pad_codes)[:, self.around_codes].transpose(0, 1)

    def _chunk_scores(self, context, prev_codes, w_head, inv_t, back_codes=None, links=()):
        """One frame per row, chunk by chunk, as a generator: yields each chunk's scores
        (B, c, K), scaled by ``inv_t`` (``w_head`` already scaled), and takes the codes drawn
        for the chunk (1, B, c (K-1)) by ``send``; with joint keys, each group's scores
        (1, B, K^n), the links (``links``, scaled as ``w_head``) from the groups below it added,
        and codes (1, B, n (K-1)) in turn (``_group_scores``). context (1, B, Ht), prev_codes and the codes
        of the frame L steps back (1, B, 88 (K-1))."""
        m, cfg = self.model, self.model.cfg
        K, c, C = self.K, cfg.chunk, cfg.n_chunks
        n_below = cfg.reach * (K - 1)
        dec_h = torch.tanh(m.dec_init(context))                                          # (1, B, Hd)
        head_bias = (m.dec_context(context) @ self.w_head + self.b_head) * inv_t        # (1, B, c K)
        around = self._around(prev_codes)                                                # (C, B, n_around)
        known = [around, self.positions.expand(-1, around.shape[1], -1)]
        if back_codes is not None:
            known.append(self._around(back_codes))
        known = torch.cat(known, -1).split(1, 0)
        below = torch.zeros_like(prev_codes[..., :n_below])
        for j in range(C):
            _, dec_h = self.decoder(torch.cat([below, known[j]], -1), dec_h)
            scores = dec_h @ w_head + head_bias
            if self.joint:
                chunk_codes = yield from self._group_scores(scores, links)
            else:
                chunk_codes = yield scores.reshape(-1, c, K)
            if j + 1 < C:
                below = torch.cat([below, chunk_codes], -1)[..., -n_below:]

    def _group_scores(self, scores: torch.Tensor, links):
        """One chunk's groups in turn: yields each group's scores (1, B, K^n), the links from the
        groups drawn below it added, and takes its codes (1, B, n (K-1)); returns the chunk's
        codes (1, B, c (K-1))."""
        parts = scores.split(self.model.cfg.classes, -1)
        drawn = [(yield parts[0])]
        for q in range(1, len(parts)):
            below = drawn[0] if q == 1 else torch.cat(drawn, -1)
            drawn.append((yield parts[q] + below @ links[q - 1]))
        return torch.cat(drawn, -1)

    def forward(self, h, c, prev, *rest):
        """rest: (hist,) with a lookback, then temperature and noise."""
        return _lockstep_bar([self], [h.shape[-1]], h, c, prev, *rest)


def _lockstep_bar(bars: list[EnDeCellBar], sizes: list[int], h, c, prev, *rest):
    """The bar of one EnDeCell (one bar) or of an ensemble of runs (``models.ensemble``), each
    run's state ``sizes`` wide in h and c: at every chunk each run scores the chunk, the scores
    are mixed (one run: its own; several: the log of the mean of their probabilities), one draw
    is made and every run's decoder reads it. One run has its temperature folded into its output
    weights once per bar; an ensemble tempers the mixed scores."""
    *hist, temperature, noise = rest
    first = bars[0]
    K, cfg, layers = first.K, first.model.cfg, h.shape[1]
    k1 = K - 1
    states = [([hm[:, i].unsqueeze(0) for i in range(layers)], [cm[:, i].unsqueeze(0) for i in range(layers)])
              for hm, cm in zip(h.split(sizes, -1), c.split(sizes, -1))]
    codes = _codes_of(prev, K).unsqueeze(0)
    # the codes of the frames L steps back, as far as this graph's steps read them (a graph of
    # fewer steps than the lookback, such as the beat bar.onnx loops over, reads only the first)
    past = [_codes_of(hist[0][:, i], K).unsqueeze(0) if i < first.steps else None
            for i in range(hist[0].shape[1])] if hist else []
    inv_t = 1.0 / temperature
    if len(bars) == 1:
        heads, scale = [(first.w_head * inv_t, inv_t)], None
    else:
        heads, scale = [(bar.w_head, 1.0) for bar in bars], inv_t
    g = cfg.joint_keys
    links = [[w * t for w in bar.links] if first.joint else () for bar, (_, t) in zip(bars, heads)]
    if first.joint:                    # each group's lowest key's uniform, per step: (B, groups on the keyboard)
        group_noise = noise[..., ::g].unbind(1)
    noise = _expand_noise(noise, K).unbind(1)
    all_codes, all_scores = [], []
    for s in range(first.steps):
        writers = [bar._chunk_scores(hs[-1], codes, w_head, t, past[s] if past else None, link)
                   for bar, (hs, _), (w_head, t), link in zip(bars, states, heads, links)]
        chunk_noise = F.pad(noise[s], (0, (cfg.padded_keys - N_KEYS) * k1)).split(cfg.chunk * k1, 1)
        if first.joint:                                  # groups wholly above the keyboard draw with 0: all off
            step_noise = F.pad(group_noise[s], (0, cfg.n_chunks * cfg.groups - group_noise[s].shape[1])).split(1, 1)
        step_codes, step_scores = [], []
        scores = [next(w) for w in writers]
        draws = [(j, q) for j in range(cfg.n_chunks) for q in range(cfg.groups if first.joint else 1)]
        for d, (j, q) in enumerate(draws):
            if scale is not None:                        # the runs' mean probabilities, tempered
                scores = [mean_conditional(scores) * scale]
            if first.joint:                              # one group: its lowest key's uniform
                drawn = first.sampler(scores[0], step_noise[d])
            else:
                drawn = first.sampler(scores[0], chunk_noise[j])
            step_codes.append(drawn)
            step_scores.append(scores[0])
            if d + 1 < len(draws):
                scores = [w.send(drawn) for w in writers]
        codes = torch.cat(step_codes, -1)[..., :N_KEYS * k1]
        all_codes.append(codes)
        if first.joint:                                  # the groups on the keyboard: their scores and classes
            on = [i for i, (j, q) in enumerate(draws) if (j * cfg.chunk + q * g) < N_KEYS]
            group_scores = torch.cat([step_scores[i] for i in on], 0)                     # (groups, B, K^n)
            group_classes = first.sampler.classes_of(torch.cat([step_codes[i] for i in on], 0))   # (groups, B)
            all_scores.append(torch.log_softmax(group_scores, -1).gather(-1, group_classes.unsqueeze(-1)).sum((0, 2)))
        else:
            all_scores.append(torch.cat(step_scores, 1)[:, :N_KEYS])
        if hist:
            past.append(codes)
        states = [bar.time(bar._encode(codes), hs, cs) for bar, (hs, cs) in zip(bars, states)]
    frames = _states_of(torch.cat(all_codes, 0).transpose(0, 1), K).long()
    if first.joint:
        logp = torch.stack(all_scores, 1).sum(-1)
    else:
        logp = tempered_log_prob(torch.stack(all_scores, 1), frames).sum(-1)
    state = (torch.cat([torch.cat(hs, 0).transpose(0, 1) for hs, _ in states], -1),
             torch.cat([torch.cat(cs, 0).transpose(0, 1) for _, cs in states], -1), frames[:, -1].float())
    if hist:                       # the last L frames: the history's that remain, then this graph's own
        lookback = hist[0].shape[1]
        kept = [hist[0][:, first.steps:]] if first.steps < lookback else []
        state += (torch.cat([*kept, frames.float()], 1)[:, -lookback:],)
    return (frames, logp) + state


class EnsembleBar(nn.Module):
    """An ensemble of EnDeCell runs' bar (``_lockstep_bar``): each run's fused graph pieces as
    ``EnDeCellBar`` builds them, their decoders stepping key by key in lockstep."""

    def __init__(self, model: Ensemble, steps: int):
        super().__init__()
        self.bars = nn.ModuleList(EnDeCellBar(member, steps) for member in model.members)
        self.sizes = list(model.sizes)
        self.eval()

    def forward(self, h, c, prev, *rest):
        return _lockstep_bar(list(self.bars), self.sizes, h, c, prev, *rest)


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
        return _graph_state(self.model.advance(frames, _torch_state(self.model, state)))


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
        frames, logp, after = self.model.sample(_torch_state(self.model, tuple(state)), noise, temperature)
        return (frames, logp) + _graph_state(after)


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
