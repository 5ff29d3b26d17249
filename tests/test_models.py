"""The two model families: exact likelihoods, state that chains, sampling that matches scoring."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from unittest.mock import patch

import pytest
import torch
import torch.nn.functional as F

from livecomp_train.models import BasicConfig, EnDeCellConfig, build_model
from livecomp_train.models.common import frame_log_likelihood
from livecomp_train.models.ensemble import Ensemble

CONFIGS = [
    BasicConfig(key_states=2, hidden=32, layers=2, neighbour_keys=0),
    BasicConfig(key_states=3, hidden=32, layers=1, neighbour_keys=0),
    BasicConfig(key_states=3, hidden=32, layers=1, neighbour_keys=12),
    BasicConfig(key_states=2, hidden=32, layers=2, mix_shifts=2, neighbour_keys=0),
    BasicConfig(key_states=3, hidden=32, layers=1, neighbour_keys=12, mix_shifts=1),
    EnDeCellConfig(key_states=2, chunk=1, enc_hidden=16, time_hidden=32, dec_hidden=16, encoder_skip=False),
    EnDeCellConfig(key_states=3, chunk=12, enc_hidden=16, time_hidden=32, dec_hidden=16, encoder_skip=True),
    EnDeCellConfig(key_states=3, chunk=8, enc_hidden=16, time_hidden=32, dec_hidden=16, encoder_skip=True, lookback=3),
    # keys drawn 4 (2) at a time, each group one choice among its states
    EnDeCellConfig(key_states=3, chunk=8, joint_keys=4, enc_hidden=16, time_hidden=32, dec_hidden=16, lookback=3),
    EnDeCellConfig(key_states=2, chunk=4, joint_keys=2, enc_hidden=16, time_hidden=32, dec_hidden=16),
    # and each group told what was drawn below it by a layer that reads the chunk's vector too
    EnDeCellConfig(key_states=3, chunk=8, joint_keys=4, link_hidden=8, enc_hidden=16, time_hidden=32, dec_hidden=16,
                   lookback=3),
    # ensembles of runs (a list: each run built with its own weights), of different sizes
    [EnDeCellConfig(key_states=2, chunk=1, enc_hidden=16, time_hidden=32, dec_hidden=16, encoder_skip=False),
     EnDeCellConfig(key_states=2, chunk=1, enc_hidden=8, time_hidden=24, dec_hidden=12, neighbour_keys=4,
                    encoder_skip=False)],
    [EnDeCellConfig(key_states=3, chunk=8, enc_hidden=16, time_hidden=32, dec_hidden=16, lookback=3,
                    encoder_skip=False)] * 3,
]
IDS = ["basic-2", "basic-3", "basic-3-neighbours", "basic-2-mixture", "basic-3-neighbours-mixture", "endecell-2-chunk1",
       "endecell-3-chunk12", "endecell-3-lookback", "endecell-3-joint4", "endecell-2-joint2", "endecell-3-joint4-link",
       "ensemble-2-chunk1",
       "ensemble-3-lookback"]


def built(cfg):
    """A model of a config, or the ensemble of a list of EnDeCell configs; the links between
    joint groups (zero in a new model) given weights, so that the groups hear each other."""
    if isinstance(cfg, list):
        return Ensemble([built(c) for c in cfg]).eval()
    model = build_model(cfg).eval()
    if getattr(model, "link", None) is not None:
        torch.nn.init.normal_(model.link.weight, std=0.5)
    if getattr(model, "group_link", None) is not None:
        torch.nn.init.normal_(model.group_link.out, std=0.5)
    return model


@pytest.fixture(params=CONFIGS, ids=IDS)
def model(request):
    torch.manual_seed(0)
    return built(request.param)


def frames_for(model, batch=2, steps=12):
    return torch.randint(0, model.cfg.key_states, (batch, steps, 88), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def test_state_after_a_then_b_equals_state_after_a_and_b_together(model):
    x = frames_for(model)
    logits, state = model(x)
    first_logits, mid = model(x[:, :5])
    rest_logits, end = model(x[:, 5:], mid)
    assert torch.allclose(torch.cat([first_logits, rest_logits], 1), logits, atol=1e-5)
    for a, b in zip(end, state):
        assert torch.equal(a.float(), b.float()) or torch.allclose(a.float(), b.float(), atol=1e-6)


@torch.no_grad()
def test_sampled_bar_log_probability_equals_its_teacher_forced_likelihood(model):
    noise = torch.rand((3, 8, 88), generator=torch.Generator().manual_seed(2))
    frames, logp, _ = model.sample(model.initial_state(3), noise, 1.0)
    logits, _ = model(frames)
    assert torch.allclose(logp, frame_log_likelihood(logits, frames).sum(1), atol=1e-3)


@torch.no_grad()
def test_same_noise_gives_the_same_bar(model):
    noise = torch.rand((1, 8, 88), generator=torch.Generator().manual_seed(3))
    a, _, _ = model.sample(model.initial_state(1), noise, 0.8)
    b, _, _ = model.sample(model.initial_state(1), noise, 0.8)
    assert torch.equal(a, b)


@torch.no_grad()
def test_a_frame_is_scored_only_from_what_came_before_it(model):
    x = frames_for(model)
    logits, _ = model(x)
    changed = x.clone()
    changed[:, 7] = (changed[:, 7] + 1) % model.cfg.key_states
    logits2, _ = model(changed)
    assert torch.allclose(logits[:, :7], logits2[:, :7], atol=1e-6)


@torch.no_grad()
def test_a_mixture_gives_each_frame_the_mean_of_its_transposed_copies_probabilities():
    """Scored the plain model's way on transposed input (the same weights), each copy gives a
    frame a probability; the mixture's per-key conditionals multiply out to their mean."""
    torch.manual_seed(0)
    plain = build_model(BasicConfig(key_states=3, hidden=32, layers=2, neighbour_keys=6)).eval()
    mixture = build_model(replace(plain.cfg, mix_shifts=2)).eval()
    mixture.load_state_dict(plain.state_dict())
    x = torch.zeros(2, 10, 88, dtype=torch.long)
    x[:, :, 30:50] = torch.randint(0, 3, (2, 10, 20), generator=torch.Generator().manual_seed(4))  # away from the ends
    per_copy = []
    for s in (-2, -1, 0, 1, 2):                 # copy key j is key j - s; keys off the keyboard are not scored
        heard = torch.roll(x, s, -1)
        logits, _ = plain(heard)
        logp = F.log_softmax(logits, -1).gather(-1, heard.unsqueeze(-1)).squeeze(-1)   # (B, T, 88)
        on_keyboard = ((torch.arange(88) - s >= 0) & (torch.arange(88) - s < 88)).float()
        per_copy.append((logp * on_keyboard).sum(-1))
    expected = torch.logsumexp(torch.stack(per_copy), 0) - math.log(5)
    logits, _ = mixture(x)
    assert torch.allclose(frame_log_likelihood(logits, x), expected, atol=1e-4)
    assert torch.allclose(F.softmax(logits, -1).sum(-1), torch.ones(2, 10, 88))
    changed = x.clone()
    changed[:, -1, 60:] = 1 - changed[:, -1, 60:].clamp(max=1)          # the last frame's keys from 60 up
    logits2, _ = mixture(changed)
    assert torch.allclose(logits2[:, -1, :61], logits[:, -1, :61], atol=1e-5)   # key k reads keys below it only
    mixture0 = build_model(replace(plain.cfg, mix_shifts=0)).eval()
    mixture0.load_state_dict(plain.state_dict())
    assert torch.equal(mixture0(x)[0], plain(x)[0])


@torch.no_grad()
def test_a_mixture_draws_each_frame_from_one_copy_chosen_by_the_first_keys_noise():
    """A model sure of one key (MIDI 61) and nothing else: copy s, which hears everything s
    semitones up, writes it s semitones down; the first key's uniform picks the copy."""
    mixture = build_model(BasicConfig(key_states=2, hidden=8, layers=1, mix_shifts=1, neighbour_keys=0)).eval()
    mixture.head.weight.zero_()
    bias = mixture.head.bias.view(88, 2)
    bias.zero_()
    bias[:, 1] = -30.0
    bias[61 - 21, 1] = 30.0
    noise = torch.full((1, 1, 88), 0.5)
    written = []
    for u in (0.1, 0.5, 0.9):                                  # copies -1, 0, +1
        noise[0, 0, 0] = u
        frames, logp, _ = mixture.sample(mixture.initial_state(1), noise, 1.0)
        written.append(frames[0, 0].nonzero().flatten().tolist())
        assert abs(logp.item() - math.log(1 / 3)) < 1e-3       # each frame is one copy's sure frame
    assert written == [[61 - 21 + 1], [61 - 21], [61 - 21 - 1]]


@torch.no_grad()
def test_endecell_scores_each_key_from_the_keys_below_it_only():
    torch.manual_seed(0)
    model = build_model(EnDeCellConfig(key_states=2, chunk=4, enc_hidden=16, time_hidden=32, dec_hidden=16,
                                       encoder_skip=False)).eval()
    x = frames_for(model)
    logits, _ = model(x)
    changed = x.clone()
    changed[:, -1, 40] = 1 - changed[:, -1, 40]       # a key of the last frame, in the chunk 40..43
    logits2, _ = model(changed)
    assert torch.allclose(logits[:, -1, :44], logits2[:, -1, :44], atol=1e-6)   # its chunk and below
    assert not torch.allclose(logits[:, -1, 44:], logits2[:, -1, 44:])         # keys above hear it


@torch.no_grad()
def test_a_lookback_keeps_the_last_frames_and_starts_unused_from_a_model_without_one():
    torch.manual_seed(0)
    sizes = dict(key_states=3, chunk=8, enc_hidden=16, time_hidden=32, dec_hidden=16)
    plain = build_model(EnDeCellConfig(**sizes, encoder_skip=False)).eval()
    looking = build_model(EnDeCellConfig(**sizes, lookback=4, encoder_skip=False)).eval()
    weights = plain.state_dict()
    grown = torch.zeros_like(looking.state_dict()["decoder.weight_ih_l0"])
    grown[:, :weights["decoder.weight_ih_l0"].shape[1]] = weights["decoder.weight_ih_l0"]   # lookback columns last
    looking.load_state_dict({**weights, "decoder.weight_ih_l0": grown})
    x = frames_for(plain, steps=10)
    logits, state = looking(x)
    assert torch.equal(state[3], x[:, -4:])                       # the last 4 frames travel in the state
    assert torch.allclose(logits, plain(x)[0], atol=1e-6)          # zero lookback weights: the same model


def test_endecell_encodes_each_distinct_frame_once_with_the_same_scores_and_gradients():
    torch.manual_seed(0)
    model = build_model(EnDeCellConfig(key_states=2, chunk=1, enc_hidden=16, time_hidden=32, dec_hidden=16,
                                       encoder_skip=True)).train()
    chords = frames_for(model, batch=2, steps=3)
    x = chords[:, [0, 0, 1, 1, 1, 2, 0, 2]]            # held chords: 6 distinct frames in 16
    seen = []
    hook = model.encoder.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))

    def loss_and_grads(encode):
        model.zero_grad()
        torch.manual_seed(5)                             # the same dropout masks both times
        with patch.object(model, "encode_frames", encode):
            logits, _ = model(x)
        loss = -frame_log_likelihood(logits, x).sum()
        loss.backward()
        return loss.item(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    once, once_grads = loss_and_grads(model.encode_frames)
    every, every_grads = loss_and_grads(model._encode)
    hook.remove()
    assert seen == [len(torch.unique(x.reshape(-1, 88), dim=0)), 16]
    assert once == pytest.approx(every, rel=1e-6)
    assert once_grads.keys() == every_grads.keys()
    for name, grad in once_grads.items():
        assert torch.allclose(grad, every_grads[name], atol=1e-5), name


def test_endecell_input_dropout_drops_keys_the_encoder_reads_and_nothing_else():
    torch.manual_seed(0)
    cfg = EnDeCellConfig(key_states=2, chunk=1, enc_hidden=16, time_hidden=32, dec_hidden=16, input_dropout=0.5,
                         dropout=0.0, encoder_skip=False)
    model = build_model(cfg).train()
    x = frames_for(model, batch=4, steps=16)
    read = []
    hook = model.encoder.register_forward_hook(lambda m, args, out: read.append(args[0]))
    with patch.object(model, "encode_frames", model._encode):
        model(x)
    heard = read[0][..., 0].reshape(x.shape).long()     # chunk 1: the first column codes the key
    assert (heard <= x).all()                           # keys only ever dropped, never added
    dropped = (x.sum() - heard.sum()).item() / x.sum().item()
    assert 0.35 < dropped < 0.65
    # The scores read the frames whole (the decoder's previous frame and the targets), and
    # without training nothing is dropped: eval is deterministic and equals p = 0.
    plain = build_model(replace(cfg, input_dropout=0.0))
    plain.load_state_dict(model.state_dict())
    hook.remove()
    model.eval(), plain.eval()
    assert torch.equal(model(x)[0], plain(x)[0])


def test_endecell_decoder_dropout_acts_in_training_only():
    torch.manual_seed(0)
    cfg = EnDeCellConfig(key_states=2, chunk=1, enc_hidden=16, time_hidden=32, dec_hidden=16, dropout=0.0,
                         dec_dropout=0.5)
    model = build_model(cfg).train()
    plain = build_model(replace(cfg, dec_dropout=0.0)).train()
    plain.load_state_dict(model.state_dict())            # the same weights: dropout adds none
    x = frames_for(model, batch=2, steps=8)
    assert not torch.allclose(model(x)[0], plain(x)[0])
    assert torch.equal(plain(x)[0], plain(x)[0])         # nothing else in the model is random here
    model.eval(), plain.eval()
    assert torch.equal(model(x)[0], plain(x)[0])


@pytest.mark.parametrize("family", ["basic", "endecell"])
def test_weight_drop_masks_recurrent_weights_in_training_only(family):
    torch.manual_seed(0)
    cfg = (BasicConfig(key_states=2, hidden=24, weight_drop=0.5, neighbour_keys=0) if family == "basic" else
           EnDeCellConfig(key_states=2, chunk=8, enc_hidden=16, time_hidden=24, dec_hidden=16, weight_drop=0.5,
                          encoder_skip=False))
    model = build_model(cfg).train()
    lstm = model.lstm if family == "basic" else model.time
    before = {k: v.clone() for k, v in lstm.state_dict().items()}
    x = frames_for(model, batch=3, steps=10)
    logits, _ = model(x)
    (-frame_log_likelihood(logits, x).sum()).backward()
    for name, weight in lstm.named_parameters():
        dead = (weight.grad == 0).float().mean().item()
        if name.startswith("weight_hh"):
            assert 0.35 < dead < 0.65, name          # about half the recurrent weights masked
        elif name.startswith("weight_ih"):
            assert dead < 0.2, name                  # the input weights untouched
    assert all(torch.equal(before[k], v) for k, v in lstm.state_dict().items())   # weights kept whole
    plain = build_model(replace(cfg, weight_drop=0.0))
    plain.load_state_dict(model.state_dict())
    model.eval(), plain.eval()
    assert torch.equal(model(x)[0], plain(x)[0])


@torch.no_grad()
def test_an_ensemble_gives_each_key_the_mean_of_its_runs_conditionals():
    """Each key's probability given the keys below it and the history is the mean of the runs'
    for the same keys below and history, so the ensemble's NLL is at most the mean of theirs."""
    torch.manual_seed(0)
    runs = [build_model(EnDeCellConfig(key_states=2, chunk=1, enc_hidden=16, time_hidden=h, dec_hidden=16,
                                       encoder_skip=False)).eval()
            for h in (32, 24, 16)]
    ensemble = Ensemble(runs).eval()
    x = (torch.rand(2, 10, 88, generator=torch.Generator().manual_seed(4)) < 0.08).long()
    logits, state = ensemble(x)
    each = torch.stack([F.softmax(run(x)[0], -1) for run in runs])
    assert torch.allclose(F.softmax(logits, -1), each.mean(0), atol=1e-6)
    assert [tuple(t.shape) for t in state[:2]] == [(2, 2, 72)] * 2      # layers, batch, 32 + 24 + 16
    nll = -frame_log_likelihood(logits, x).mean()
    assert nll <= torch.stack([-frame_log_likelihood(run(x)[0], x).mean() for run in runs]).mean()
    with pytest.raises(ValueError, match="must share key_states"):
        Ensemble([runs[0], build_model(EnDeCellConfig(key_states=3, chunk=1, enc_hidden=16, time_hidden=32,
                                                      dec_hidden=16))])


@torch.no_grad()
def test_an_ensemble_draws_each_key_once_and_tells_every_run_the_draw():
    """The frames drawn are the ensemble's own (not the first run's for the same noise), and each
    run's state afterwards is the state it reaches by hearing those frames."""
    torch.manual_seed(0)
    runs = [build_model(EnDeCellConfig(key_states=2, chunk=1, enc_hidden=16, time_hidden=32, dec_hidden=16,
                                       encoder_skip=False)).eval()
            for _ in range(2)]
    ensemble = Ensemble(runs).eval()
    noise = torch.rand((2, 4, 88), generator=torch.Generator().manual_seed(5))
    frames, logp, after = ensemble.sample(ensemble.initial_state(2), noise, 1.0)
    for run, h, c in zip(runs, after[0].split(32, -1), after[1].split(32, -1)):
        _, own = run(frames)
        assert torch.allclose(own[0], h, atol=1e-6) and torch.allclose(own[1], c, atol=1e-6)
    assert torch.equal(after[2], frames[:, -1])
    alone, _, _ = runs[0].sample(runs[0].initial_state(2), noise, 1.0)
    assert not torch.equal(alone, frames)           # the second run's conditionals moved some draws


def test_a_stored_config_without_a_later_setting_reads_as_the_model_it_was():
    """A new run's defaults (neighbour keys 12, the encoder skip on) are not what a checkpoint
    written before those settings existed holds: it reads as the model it was."""
    from livecomp_train.configs import config_from_dict

    assert config_from_dict({"architecture": "basic", "key_states": 2, "hidden": 8, "layers": 1}).neighbour_keys == 0
    assert config_from_dict({"architecture": "endecell", "key_states": 2}).encoder_skip is False
    assert BasicConfig().neighbour_keys == 12 and EnDeCellConfig().encoder_skip is True


def test_joint_keys_report_each_keys_conditional_and_sum_to_the_groups_probability():
    from livecomp_train.models.joint import key_logits

    torch.manual_seed(0)
    joint = torch.randn(6, 81)                                   # 4 keys of 3 states
    states = torch.randint(0, 3, (6, 4))
    classes = (states * 3 ** torch.arange(4)).sum(-1)
    keys = key_logits(joint, states, 3)                          # (6, 4, 3)
    picked = F.log_softmax(keys, -1).gather(-1, states.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(picked.sum(-1), F.log_softmax(joint, -1)[torch.arange(6), classes], atol=1e-5)
    # the lowest key's scores are its marginal: the other keys summed out
    marginal = torch.logsumexp(joint.view(6, 3, 3, 3, 3), (1, 2, 3))
    assert torch.allclose(F.log_softmax(keys[:, 0], -1), F.log_softmax(marginal, -1), atol=1e-5)


@torch.no_grad()
def test_a_joint_model_starts_from_a_per_key_one_as_the_same_distribution(tmp_path):
    from livecomp_train.checkpoint import init_from, save_checkpoint

    torch.manual_seed(0)
    cfg = EnDeCellConfig(key_states=3, chunk=8, enc_hidden=16, time_hidden=32, dec_hidden=16)
    plain = build_model(cfg).eval()
    save_checkpoint(tmp_path / "best.pt", {"model": plain.state_dict()}, {"model": asdict(cfg), "train": {}})
    joint = build_model(replace(cfg, joint_keys=4)).eval()
    init_from(joint, str(tmp_path))
    x = frames_for(plain)
    assert torch.allclose(F.log_softmax(joint(x)[0], -1), F.log_softmax(plain(x)[0], -1), atol=1e-5)
    torch.nn.init.normal_(joint.link.weight)     # once it has learnt links, a key hears the keys below it in its group
    assert not torch.allclose(F.log_softmax(joint(x)[0], -1), F.log_softmax(plain(x)[0], -1), atol=1e-3)


@torch.no_grad()
def test_a_group_link_starts_unused_and_then_tells_a_group_what_was_drawn_below_it(tmp_path):
    from livecomp_train.checkpoint import init_from, save_checkpoint

    torch.manual_seed(0)
    cfg = EnDeCellConfig(key_states=3, chunk=8, joint_keys=4, enc_hidden=16, time_hidden=32, dec_hidden=16)
    plain = build_model(cfg).eval()
    save_checkpoint(tmp_path / "best.pt", {"model": plain.state_dict()}, {"model": asdict(cfg), "train": {}})
    linked = build_model(replace(cfg, link_hidden=8)).eval()
    init_from(linked, str(tmp_path))
    x = frames_for(plain)
    assert torch.allclose(linked(x)[0], plain(x)[0], atol=1e-5)       # the same model until it learns
    torch.nn.init.normal_(linked.group_link.out)
    changed = x.clone()
    changed[:, -1, 40] = (changed[:, -1, 40] + 1) % 3                  # a key of the chunk 40..47's lower group
    before, after = linked(x)[0], linked(changed)[0]
    assert torch.allclose(before[:, -1, :41], after[:, -1, :41], atol=1e-6)   # itself and the keys below it: deaf
    assert not torch.allclose(before[:, -1, 44:48], after[:, -1, 44:48])      # the group above hears it
    with pytest.raises(ValueError, match="--link-hidden 8 tells each group"):
        EnDeCellConfig(key_states=3, chunk=8, link_hidden=8)


def test_joint_keys_that_do_not_divide_the_chunk_or_join_an_ensemble_are_refused_in_one_sentence():
    with pytest.raises(ValueError, match="must divide --chunk 8"):
        EnDeCellConfig(key_states=3, chunk=8, joint_keys=3)
    with pytest.raises(ValueError, match="at most 256"):
        EnDeCellConfig(key_states=3, chunk=8, joint_keys=8)
    joint = build_model(EnDeCellConfig(key_states=3, chunk=8, joint_keys=4, enc_hidden=16, time_hidden=32,
                                       dec_hidden=16))
    with pytest.raises(ValueError, match="cannot be one of its members"):
        Ensemble([joint, joint])
