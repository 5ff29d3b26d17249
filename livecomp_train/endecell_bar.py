"""EnDeCell's bar graph, for one run or an ensemble of runs stepping in lockstep: a fixed number
of steps sampled inside one graph, chunk by chunk (with joint keys, group by group), the
decoder's input known before each step cut for all chunks at once, the log-probability of the
bar computed from the scores at the end. The same function as ``EnDeCell.sample``, so the same
noise gives the same frames (``checks.check_sampler``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .codes import JointSampler, LSTMNodes, Sampler, codes_of, expand_noise, from_one_hot, frozen, states_of
from .models.common import N_KEYS, tempered_log_prob
from .models.endecell import EnDeCell
from .models.ensemble import Ensemble
from .models.lockstep import mean_conditional


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
        self.time = LSTMNodes(model.time)
        self.decoder = nn.GRU(model.decoder.input_size, cfg.dec_hidden)        # seq-first: no transposes
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self.decoder, f"{kind}_l0").data.copy_(getattr(model.decoder, f"{kind}_l0").detach())
        w = self.decoder.weight_ih_l0.data                                  # the model's decoder_columns
        layout = cfg.decoder_columns()
        assert list(layout)[:3] == ["below", "around", "position"]          # as ``_write`` puts them together
        for columns, keys in layout.values():
            if keys is not None:                                            # key codes: read as thermometer codes
                w[:, columns] = from_one_hot(w[:, columns], keys, K)
        self.encoder = nn.GRU(model.encoder.input_size, cfg.enc_hidden, batch_first=True)
        self.encoder.load_state_dict(model.encoder.state_dict())
        w = self.encoder.weight_ih_l0.data                                  # [chunk code, position] columns
        w[:, :cfg.chunk * (K - 1)] = from_one_hot(w[:, :cfg.chunk * (K - 1)], cfg.chunk, K)
        self.skip = None
        if model.encoder_skip is not None:
            self.skip = nn.Linear(N_KEYS * (K - 1), cfg.enc_hidden)
            self.skip.load_state_dict(model.encoder_skip.state_dict())
            self.skip.weight.data.copy_(from_one_hot(self.skip.weight.data, N_KEYS, K))
        self.requires_grad_(False)
        self.joint = model.link is not None
        self.sampler = JointSampler(K, cfg.joint_keys) if self.joint else Sampler(K, cfg.chunk)
        self.w_head = frozen(model.head.weight.detach().t())               # (H, c K) or (H, G K^n)
        self.b_head = frozen(model.head.bias.detach())
        if self.joint:              # group q's scores from the codes of the groups below it: (q n (K-1), K^n)
            linked = from_one_hot(model.link.weight.detach() * model.link_mask, cfg.chunk, K).t()
            width, classes = cfg.joint_keys * (K - 1), cfg.classes
            self.links = nn.ParameterList(frozen(linked[:q * width, q * classes:(q + 1) * classes])
                                          for q in range(1, cfg.groups))
        self.group_link = self.joint and model.group_link is not None
        if self.group_link:         # ``GroupLink``: units from the chunk's vector, then from the codes below each group
            gl, m = model.group_link, cfg.link_hidden
            self.gl_in = frozen(gl.context.weight.detach().t())                          # (Hd, m)
            self.gl_bias = frozen(gl.context.bias.detach())
            below = from_one_hot(gl.codes.weight.detach() * gl.mask, cfg.chunk, K).t()  # (c (K-1), G m)
            self.gl_codes = nn.ParameterList(frozen(below[:q * width, q * m:(q + 1) * m]) for q in range(1, cfg.groups))
            self.gl_out = nn.ParameterList(frozen(gl.out.detach()[q]) for q in range(cfg.groups))   # (m, K^n) each
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

    def _chunk_scores(self, context, prev_codes, w_head, inv_t, back_codes=None, links=((), ())):
        """One frame per row, chunk by chunk, as a generator: yields each chunk's scores
        (B, c, K), scaled by ``inv_t`` (``w_head`` already scaled), and takes the codes drawn
        for the chunk (1, B, c (K-1)) by ``send``; with joint keys, each group's scores
        (1, B, K^n), the links from the groups below it added (``links``: the linear link's and
        ``GroupLink``'s output weights, scaled as ``w_head``), and codes (1, B, n (K-1)) in turn
        (``_group_scores``). context (1, B, Ht), prev_codes and the codes of the frame L steps
        back (1, B, 88 (K-1))."""
        m, cfg = self.model, self.model.cfg
        K, c, C = self.K, cfg.chunk, cfg.n_chunks
        n_below = cfg.reach * (K - 1)
        dec_h = torch.tanh(m.dec_init(context))                                          # (1, B, Hd)
        vector_bias = m.dec_context(context)                                             # (1, B, Hd)
        head_bias = (vector_bias @ self.w_head + self.b_head) * inv_t                   # (1, B, c K)
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
                units = (dec_h + vector_bias) @ self.gl_in + self.gl_bias if self.group_link else None
                chunk_codes = yield from self._group_scores(scores, links, units)
            else:
                chunk_codes = yield scores.reshape(-1, c, K)
            if j + 1 < C:
                below = torch.cat([below, chunk_codes], -1)[..., -n_below:]

    def _group_scores(self, scores: torch.Tensor, links, units=None):
        """One chunk's groups in turn: yields each group's scores (1, B, K^n), the links from the
        groups drawn below it added, and takes its codes (1, B, n (K-1)); returns the chunk's
        codes (1, B, c (K-1)). ``units``: ``GroupLink``'s units before the codes below (1, B, m)."""
        linear, outs = links
        parts = scores.split(self.model.cfg.classes, -1)
        first = parts[0] if units is None else parts[0] + torch.relu(units) @ outs[0]
        drawn = [(yield first)]
        for q in range(1, len(parts)):
            below = drawn[0] if q == 1 else torch.cat(drawn, -1)
            group = parts[q] + below @ linear[q - 1]
            if units is not None:
                group = group + torch.relu(units + below @ self.gl_codes[q - 1]) @ outs[q]
            drawn.append((yield group))
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
    codes = codes_of(prev, K).unsqueeze(0)
    # the codes of the frames L steps back, as far as this graph's steps read them (a graph of
    # fewer steps than the lookback, such as the beat bar.onnx loops over, reads only the first)
    past = [codes_of(hist[0][:, i], K).unsqueeze(0) if i < first.steps else None
            for i in range(hist[0].shape[1])] if hist else []
    inv_t = 1.0 / temperature
    if len(bars) == 1:
        heads, scale = [(first.w_head * inv_t, inv_t)], None
    else:
        heads, scale = [(bar.w_head, 1.0) for bar in bars], inv_t
    g = cfg.joint_keys
    links = [([w * t for w in bar.links], [w * t for w in bar.gl_out] if bar.group_link else ()) if first.joint
             else ((), ()) for bar, (_, t) in zip(bars, heads)]
    if first.joint:                    # each group's lowest key's uniform, per step: (B, groups on the keyboard)
        group_noise = noise[..., ::g].unbind(1)
    noise = expand_noise(noise, K).unbind(1)
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
    frames = states_of(torch.cat(all_codes, 0).transpose(0, 1), K).long()
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
