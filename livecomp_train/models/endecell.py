"""EnDeCell: an encoder RNN per step, a time LSTM across steps, a decoder RNN per step.

At each step an encoder GRU reads the frame ``chunk`` keys at a time (low to high) into a
vector; a time LSTM links those vectors across steps; a decoder GRU, started from the time
LSTM's output before frame t, writes frame t chunk by chunk (low to high), each chunk
conditioned on the time context, on everything already written (through the decoder's state,
and directly on the ``neighbour_keys`` keys just below the chunk) and on the previous frame around
the chunk (``neighbour_keys`` keys either side). The keys inside one chunk are independent given
all that (``chunk=1`` is the pure key-by-key form), so the likelihood is exact:

    log p(frame_t | history) = sum_j log p(chunk_j | chunks < j, frame_{t-1}, history)

With ``joint_keys`` n > 1 a chunk's keys are drawn n at a time, each group of n keys as one
choice among its K^n states (a chord's notes in one draw, not each key on its own), each group
given the chunk's groups below it through a linear map of their states (``link``). The model
still reports per-key conditionals (key i given the keys below it in the group, the later ones
summed out: ``key_logits``), so a known sequence's likelihood is the same sum over keys.

With ``lookback`` L > 0 each decoder step also sees the frame L steps back around its chunk
(L = 16: the same place in the previous 4/4 bar at 16th notes), as Magenta's Lookback RNN feeds
the events of a bar ago: continuing a pattern, a texture or a rhythm then takes one copy, not a
memory the time LSTM must keep. The last L frames travel in the state (``hist``).

The state carried between calls is the time LSTM's (h, c), the previous frame and, with a
lookback, the last L frames, so encoding ``a`` then ``b`` equals encoding ``a ++ b``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import AutoencoderConfig, EnDeCellConfig
from .common import N_KEYS, one_hot_states, run_lstm
from .joint import GroupLink, below_groups_mask, group_states, key_logits
from .lockstep import mean_conditional, predict_lockstep, sample_lockstep


class EnDeCell(nn.Module):
    def __init__(self, cfg: EnDeCellConfig):
        super().__init__()
        self.cfg = cfg
        code = cfg.chunk * (cfg.key_states - 1)                 # features of one chunk
        self.position = nn.Embedding(cfg.n_chunks, cfg.pos_dim)
        self.encoder = nn.GRU(code + cfg.pos_dim, cfg.enc_hidden, batch_first=True)
        self.encoder_skip = nn.Linear(N_KEYS * (cfg.key_states - 1), cfg.enc_hidden) if cfg.encoder_skip else None
        self.time = nn.LSTM(cfg.enc_hidden, cfg.time_hidden, cfg.time_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.time_layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.dec_init = nn.Linear(cfg.time_hidden, cfg.dec_hidden)
        self.dec_context = nn.Linear(cfg.time_hidden, cfg.dec_hidden)
        dec_in = list(cfg.decoder_columns().values())[-1][0].stop
        self.decoder = nn.GRU(dec_in, cfg.dec_hidden, batch_first=True)
        self.dec_drop = nn.Dropout(cfg.dec_dropout)
        if cfg.joint_keys == 1:
            self.head = nn.Linear(cfg.dec_hidden, cfg.chunk * cfg.key_states)
            self.link = None
        else:
            self.head = nn.Linear(cfg.dec_hidden, cfg.groups * cfg.classes)
            # group q of a chunk reads the codes of the chunk's groups below it: a causal mask
            self.link = nn.Linear(cfg.chunk * (cfg.key_states - 1), cfg.groups * cfg.classes, bias=False)
            nn.init.zeros_(self.link.weight)            # starts as independent groups; learns how they go together
            self.register_buffer("link_mask", below_groups_mask(cfg, cfg.classes), persistent=False)
        self.group_link = GroupLink(cfg) if cfg.link_hidden else None
        starts = torch.arange(cfg.n_chunks).unsqueeze(1) * cfg.chunk        # chunk j starts at key j c
        self.register_buffer("below_index", starts + torch.arange(cfg.reach), persistent=False)
        self.register_buffer("around_index", starts + torch.arange(2 * cfg.reach + cfg.chunk), persistent=False)

    # -- state ------------------------------------------------------------------------------

    def state_shapes(self) -> list[tuple[str, list[int]]]:
        c = self.cfg
        return [("h", [c.time_layers, c.time_hidden]), ("c", [c.time_layers, c.time_hidden]),
                ("prev", [N_KEYS])] + ([("hist", [c.lookback, N_KEYS])] if c.lookback else [])

    def initial_state(self, batch: int, device=None):
        shape = (self.cfg.time_layers, batch, self.cfg.time_hidden)
        state = (torch.zeros(shape, device=device), torch.zeros(shape, device=device),
                 torch.zeros(batch, N_KEYS, dtype=torch.long, device=device))
        if self.cfg.lookback:
            state += (torch.zeros(batch, self.cfg.lookback, N_KEYS, dtype=torch.long, device=device),)
        return state

    # -- pieces -----------------------------------------------------------------------------

    def _chunks(self, frames: torch.Tensor) -> torch.Tensor:
        """Key states (N, 88) -> chunk codes (N, n_chunks, chunk * (K - 1)), padded keys off."""
        padded = F.pad(frames, (0, self.cfg.padded_keys - N_KEYS))
        codes = one_hot_states(padded.view(*frames.shape[:-1], self.cfg.n_chunks, self.cfg.chunk),
                               self.cfg.key_states)
        return codes

    def _positions(self, n: int) -> torch.Tensor:
        return self.position.weight.unsqueeze(0).expand(n, -1, -1)       # (n, n_chunks, P)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (N, 88) -> frame vectors (N, enc_hidden): the encoder's last hidden state, plus
        a linear map of the frame with ``encoder_skip`` (the GRU alone, reading 88 keys to one
        state, learns slowly what is in the frame; the skip gives the time LSTM the frame at once
        and leaves the GRU the interactions between keys).

        A frame's vector depends on the frame alone, and music repeats its frames (a held chord
        is the same frame every step): a batch of Nottingham windows holds about one distinct
        frame in ten, JSB's about one in two. So each distinct frame is encoded once and its
        vector copied to where it occurs; the gradient of a copy adds up at its source, so
        training is the same as encoding every frame. Graph export encodes every frame."""
        if frames.shape[0] > 1 and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            distinct, where = torch.unique(frames, dim=0, return_inverse=True)
            if distinct.shape[0] < frames.shape[0]:
                return self._encode(distinct)[where]
        return self._encode(frames)

    def _encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self._chunks(frames), self._positions(frames.shape[0])], -1)
        _, h = self.encoder(x)
        if self.encoder_skip is None:
            return h[-1]
        return h[-1] + self.encoder_skip(one_hot_states(frames, self.cfg.key_states))

    def _windows(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each chunk j of frames (N, 88): the ``reach`` keys below it (N, C, reach) and the
        keys from ``reach`` below to ``reach`` above it (N, C, 2 reach + chunk); off outside 21..108."""
        r = self.cfg.reach
        padded = F.pad(frames, (r, self.cfg.padded_keys - N_KEYS + r))      # (N, r + P + r)
        below = padded[..., self.below_index]                                # (N, C, r)
        around = padded[..., self.around_index]                              # (N, C, 2 r + c)
        return below, around

    def _decoder_input(self, below: torch.Tensor, around: torch.Tensor, positions: torch.Tensor,
                       back: torch.Tensor | None = None) -> torch.Tensor:
        """Per chunk, its parts in the order of ``decoder_columns``."""
        k = self.cfg.key_states
        parts = {"below": one_hot_states(below, k), "around": one_hot_states(around, k), "position": positions}
        if back is not None:
            parts["back"] = one_hot_states(back, k)
        return torch.cat([parts[name] for name in self.cfg.decoder_columns()], -1)

    def _decode(self, context: torch.Tensor, frames: torch.Tensor, prev: torch.Tensor,
                back: torch.Tensor | None = None, joint: bool = False) -> torch.Tensor:
        """Teacher-forced decoder: context (N, Ht), frames, prev and (with a lookback) the frame
        L steps back (N, 88) -> logits (N, 88, K); ``joint`` (a model with joint keys): the
        scores of each group's classes instead (N, C G, K^n)."""
        below, _ = self._windows(frames)                                     # keys written before chunk j
        _, around = self._windows(prev)                                      # previous frame around chunk j
        back = self._windows(back)[1] if back is not None else None         # the frame L back around chunk j
        x = self._decoder_input(below, around, self._positions(frames.shape[0]), back)   # (N, C, D)
        context = self.drop(context)
        h0 = torch.tanh(self.dec_init(context)).unsqueeze(0)                 # (1, N, Hd)
        out, _ = self.decoder(x, h0)                                         # (N, C, Hd)
        vector = self.dec_drop(out) + self.dec_context(context).unsqueeze(1)
        logits = self.head(vector)
        if joint:
            return self._linked(logits, self._chunks(frames), vector).view(frames.shape[0], -1, self.cfg.classes)
        if self.link is not None:                                            # (N, C, G classes): joint groups
            logits = self._keys_of_groups(logits, self._chunks(frames), vector,
                                          F.pad(frames, (0, self.cfg.padded_keys - N_KEYS)))
        logits = logits.view(frames.shape[0], self.cfg.padded_keys, self.cfg.key_states)
        return logits[:, :N_KEYS]

    def _linked(self, scores: torch.Tensor, codes: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """The groups' scores (..., G classes) given the codes of the chunk's keys (..., c (K-1))
        and the decoder's vector the head read (..., Hd): each group's own plus the link from
        the groups below it (and with ``link_hidden``, ``GroupLink``'s)."""
        linked = scores + F.linear(codes, self.link.weight * self.link_mask)
        return linked if self.group_link is None else linked + self.group_link(vector, codes)

    def _keys_of_groups(self, scores: torch.Tensor, codes: torch.Tensor, vector: torch.Tensor,
                        states: torch.Tensor) -> torch.Tensor:
        """Teacher-forced joint scores (N, C, G classes) of the chunks whose codes are ``codes``
        (N, C, c (K-1)), the decoder's vectors (N, C, Hd) and key states ``states`` (N, C c) ->
        per-key conditionals (N, C, c K)."""
        cfg = self.cfg
        N, C = scores.shape[:2]
        joint = self._linked(scores, codes, vector).view(N, C, cfg.groups, cfg.classes)
        keys = key_logits(joint, states.view(N, C, cfg.groups, cfg.joint_keys), cfg.key_states)
        return keys.reshape(N, C, cfg.chunk * cfg.key_states)

    def class_states(self, classes: torch.Tensor) -> torch.Tensor:
        """Joint classes (...) -> the key states of their group (..., joint_keys), lowest key first."""
        return group_states(classes, self.cfg.key_states, self.cfg.joint_keys)

    # -- the model ----------------------------------------------------------------------------

    def _heard(self, frames: torch.Tensor) -> torch.Tensor:
        """The frames as the encoder reads them: in training with ``input_dropout`` p, each
        sounding key turned off with probability p (the time LSTM learns from a history with
        notes missing, so it cannot lean on any one of them). The decoder's view of the
        previous frame and the frames scored stay whole. The keys are dropped, not rescaled, so
        a dropped frame is still a frame and encoding each distinct frame once still holds."""
        p = self.cfg.input_dropout
        if not self.training or p == 0:
            return frames
        return frames * (torch.rand(frames.shape, device=frames.device) >= p)

    def _history(self, frames: torch.Tensor, state):
        """Run the time LSTM over frames (B, T, 88): the context before each frame (B, T, Ht),
        the frame before each (B, T, 88), the frame L steps before each (B, T, 88; None without
        a lookback), and the state after all of them."""
        B, T, _ = frames.shape
        h, c, prev, *hist = state if state is not None else self.initial_state(B, frames.device)
        vectors = self.encode_frames(self._heard(frames).reshape(B * T, N_KEYS)).view(B, T, -1)
        out, (h2, c2) = run_lstm(self.time, self.drop(vectors), (h, c), self.cfg.weight_drop)   # (B, T, Ht)
        before = torch.cat([h[-1].unsqueeze(1), out[:, :-1]], 1)             # (B, T, Ht)
        previous = torch.cat([prev.unsqueeze(1), frames[:, :-1]], 1)         # (B, T, 88)
        if not self.cfg.lookback:
            return before, previous, None, (h2, c2, frames[:, -1])
        full = torch.cat([hist[0], frames], 1)                               # (B, L + T, 88)
        return before, previous, full[:, :T], (h2, c2, frames[:, -1], full[:, T:])

    def forward(self, frames: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """frames (B, T, 88) int64 -> (logits (B, T, 88, K): per-key conditionals of frames[:, t]
        given the keys below and the history before t, state after all T frames).

        ``targets`` (default ``frames``) are the frames scored, when the history fed in differs
        from them (scheduled sampling).
        """
        B, T, _ = frames.shape
        logits, new_state = self._scored(frames, state, frames if targets is None else targets)
        return logits.view(B, T, N_KEYS, -1), new_state

    def _scored(self, frames: torch.Tensor, state, targets: torch.Tensor, joint: bool = False):
        """The teacher-forced decoder over ``targets`` after the history of frames (B, T, 88):
        (``_decode``'s output for the B T frames, the state after them)."""
        B, T, _ = frames.shape
        before, previous, back, new_state = self._history(frames, state)
        flat = [x.reshape(B * T, -1) if x is not None else None for x in (before, targets, previous, back)]
        return self._decode(*flat, joint=joint), new_state

    def group_scores(self, frames: torch.Tensor, state=None) -> torch.Tensor:
        """With joint keys: the scores each group of frames (B, T, 88) was drawn from, given the
        history and the groups below it: (B, T, groups, K^n), groups from the lowest key up."""
        B, T, _ = frames.shape
        scores, _ = self._scored(frames, state, frames, joint=True)
        return scores.view(B, T, -1, self.cfg.classes)

    def advance(self, frames: torch.Tensor, state=None):
        """The state after frames (B, T, 88), without scoring them (all a listener needs)."""
        return self._history(frames, state)[3]

    def _chunk_writer(self, context: torch.Tensor, prev: torch.Tensor, back: torch.Tensor | None = None):
        """Write one frame per row chunk by chunk, as a generator: for each chunk it yields
        (first key, logits (N, keys, K)) and takes the chosen states (N, keys) by ``send``; the
        frame (N, 88) is its return value. context (N, Ht), prev and the frame L steps back
        (N, 88). A caller that mixes several models' conditionals (``Ensemble``) runs their
        writers in lockstep, each told the same choice."""
        cfg = self.cfg
        r, c = cfg.reach, cfg.chunk
        N = context.shape[0]
        dec_h = torch.tanh(self.dec_init(context)).unsqueeze(0)
        ctx = self.dec_context(context)
        _, around = self._windows(prev)                                      # (N, C, 2r + c)
        back = self._windows(back)[1] if back is not None else None         # (N, C, 2r + c)
        written = torch.zeros(N, r + cfg.padded_keys, dtype=torch.long, device=context.device)
        for j in range(cfg.n_chunks):
            lo = j * c
            x = self._decoder_input(written[:, lo:lo + r], around[:, j], self.position.weight[j].expand(N, -1),
                                    back[:, j] if back is not None else None)
            out, dec_h = self.decoder(x.unsqueeze(1), dec_h)
            real = min(c, N_KEYS - lo)
            vector = out[:, 0] + ctx
            if self.link is None:
                logits = self.head(vector).view(N, c, cfg.key_states)
                states = yield lo, logits[:, :real]
            else:                                    # group by group: yields (N, 1, classes), takes the class
                states = (yield from self._group_writer(self.head(vector), vector, lo))[:, :real]
            written = torch.cat([written[:, :r + lo], states, written[:, r + lo + real:]], 1)
        return written[:, r:r + N_KEYS]

    def _group_writer(self, scores: torch.Tensor, vector: torch.Tensor, lo: int):
        """One chunk's groups drawn in turn from its scores (N, G classes) and the decoder's
        vector the head read (N, Hd): yields (first key,
        scores (N, 1, classes)) of each group on the keyboard, takes the class drawn; returns the
        chunk's key states (N, chunk)."""
        cfg = self.cfg
        g = cfg.joint_keys
        N = scores.shape[0]
        states = torch.zeros(N, cfg.chunk, dtype=torch.long, device=scores.device)
        for q in range(cfg.groups):
            first = lo + q * g
            if first >= N_KEYS:                      # a group of padding keys alone: off
                break
            codes = one_hot_states(states, cfg.key_states)
            joint = self._linked(scores, codes, vector)[:, q * cfg.classes:(q + 1) * cfg.classes]
            drawn = yield first, joint.unsqueeze(1)
            states[:, q * g:(q + 1) * g] = self.class_states(drawn[:, 0])
        return states

    def predict(self, frames: torch.Tensor, state=None) -> torch.Tensor:
        """The most likely frame at each step given the true history, written greedily chunk by
        chunk on its own choices: frames (B, T, 88) -> (B, T, 88)."""
        return predict_lockstep([self], [state], frames, mean_conditional)

    def sample(self, state, noise: torch.Tensor, temperature=1.0):
        """Sample S frames, each chunk by chunk: noise (B, S, 88) uniform -> (frames (B, S, 88),
        logp (B,), state after them)."""
        frames, logp, (after,) = sample_lockstep([self], [state], noise, temperature, mean_conditional)
        return frames, logp, after


class EnDeCellAutoencoder(nn.Module):
    """EnDeCell's encoder and decoder alone, trained to reconstruct each frame from its vector.

    The encoder reads frame t into a vector, a bridge maps it to the size of the time LSTM's
    output, and the decoder writes frame t back key by key from it (with no previous frame).
    Its ``net`` holds exactly the parameters the full model starts from with ``--init-from``.
    """

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.net = EnDeCell(cfg)
        self.bridge = nn.Linear(cfg.enc_hidden, cfg.time_hidden)

    def forward(self, frames: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """frames (B, T, 88) -> (reconstruction logits (B, T, 88, K), None)."""
        B, T, _ = frames.shape
        flat = frames.reshape(B * T, N_KEYS)
        code = torch.tanh(self.bridge(self.net.drop(self.net.encode_frames(self.net._heard(flat)))))
        logits = self.net._decode(code, flat, torch.zeros_like(flat))
        return logits.view(B, T, N_KEYS, -1), None

    def pretrained_state(self) -> dict:
        """The parameters the full EnDeCell takes over (everything but the time LSTM)."""
        return {k: v for k, v in self.net.state_dict().items() if not k.startswith("time.")}
