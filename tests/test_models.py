"""Tests of adamnoise.models: the model interface, causality, Transformer-XL's relative attention
and memory, RoPE, parameter counts of the seeds' models, initialisation and dropout."""

import math

import pytest
import torch

from adamnoise.models import (
    MODEL_PARAMETERS,
    PRESETS,
    build_model,
    count_parameters,
    resolve_model_config,
)
from adamnoise.models.gpt import RotaryEmbedding
from adamnoise.models.transformer_xl import rel_shift

torch.set_num_threads(1)

VOCAB = 23
TINY_PRESETS = ["txl-tiny", "gpt-tiny", "nanogpt-tiny"]
# Every tiny variant whose causality and interface we check; Transformer-XL with and without memory.
TINY_CONFIGS = {
    "txl-tiny": {"preset": "txl-tiny"},
    "txl-tiny-memory": {"preset": "txl-tiny", "carry_memory": True, "mem_len": 8},
    "gpt-tiny": {"preset": "gpt-tiny"},
    "nanogpt-tiny": {"preset": "nanogpt-tiny"},
}


def make_model(cfg, seed=0, vocab=VOCAB):
    torch.manual_seed(seed)
    return build_model(cfg, vocab)


def random_batch(model, batch=2, seq_len=12, vocab=VOCAB, seed=1):
    """inputs [batch, context_len + seq_len] and targets [batch, seq_len], as the trainer passes."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(vocab, (batch, model.context_len + seq_len + 1), generator=generator)
    return tokens[:, :-1], tokens[:, model.context_len + 1 :]


# ---------------------------------------------------------------------------------------------
# Interface


@pytest.mark.parametrize("name", TINY_CONFIGS)
def test_loss_is_per_token_float32_near_log_vocab_at_init(name):
    model = make_model(TINY_CONFIGS[name]).eval()
    inputs, targets = random_batch(model)
    loss = model(inputs, targets)
    assert loss.shape == targets.shape
    assert loss.dtype == torch.float32
    # Small initial weights give nearly uniform predictions: loss ≈ ln(vocab).
    assert abs(loss.mean().item() - math.log(VOCAB)) < 0.3


@pytest.mark.parametrize("name", TINY_CONFIGS)
def test_loss_is_negative_log_of_a_normalised_distribution(name):
    # For a fixed input, exp(-loss) over every possible target value must sum to one at every
    # position: the loss is the per-token NLL of a softmax, not a mean or a sum.
    model = make_model(TINY_CONFIGS[name]).eval()
    inputs, _ = random_batch(model, batch=1, seq_len=6)
    all_inputs = inputs.expand(VOCAB, -1)
    all_targets = torch.arange(VOCAB)[:, None].expand(VOCAB, 6)
    with torch.no_grad():
        loss = model(all_inputs, all_targets)
    torch.testing.assert_close(torch.exp(-loss).sum(0), torch.ones(6), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", TINY_CONFIGS)
def test_causality_future_tokens_do_not_change_earlier_losses(name):
    model = make_model(TINY_CONFIGS[name]).eval()
    inputs, targets = random_batch(model, seq_len=12)
    changed_at = 7  # position within the segment
    column = model.context_len + changed_at
    altered = inputs.clone()
    altered[:, column] = (altered[:, column] + 1) % VOCAB
    with torch.no_grad():
        before, after = model(inputs, targets), model(altered, targets)
    torch.testing.assert_close(after[:, :changed_at], before[:, :changed_at], atol=1e-6, rtol=0)
    assert (after[:, changed_at:] - before[:, changed_at:]).abs().max() > 1e-4


def test_context_len_is_zero_unless_transformer_xl_carries_memory():
    assert make_model({"preset": "txl-tiny"}).context_len == 0
    assert make_model({"preset": "gpt-tiny"}).context_len == 0
    assert make_model({"preset": "nanogpt-tiny"}).context_len == 0
    memory_model = make_model({"preset": "txl-tiny", "carry_memory": True})
    assert memory_model.context_len == PRESETS["txl-tiny"]["mem_len"] == 32


def test_models_without_context_refuse_inputs_longer_than_targets():
    for name in TINY_PRESETS:
        model = make_model({"preset": name})
        with pytest.raises(ValueError):
            model(torch.zeros(1, 9, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long))


@pytest.mark.parametrize("preset", ["gpt-tiny", "nanogpt-tiny"])
def test_sequences_longer_than_max_seq_len_are_refused(preset):
    model = make_model({"preset": preset, "max_seq_len": 8})
    ok = torch.zeros(1, 8, dtype=torch.long)
    model(ok, ok)
    too_long = torch.zeros(1, 9, dtype=torch.long)
    with pytest.raises(ValueError, match="max_seq_len"):
        model(too_long, too_long)


# ---------------------------------------------------------------------------------------------
# Transformer-XL: relative attention and memory


def test_rel_shift_indexes_scores_by_distance():
    # x[..., i, m] is the score against the encoding of distance klen-1-m. After the shift,
    # entry [i, j] must be the score against distance mlen + i - j (query i sits after mlen
    # memory positions), for every key j the query may see (j <= mlen + i).
    for qlen, mlen in [(5, 0), (4, 3), (1, 6), (6, 6)]:
        klen = qlen + mlen
        x = torch.randn(2, 3, qlen, klen)
        shifted = rel_shift(x)
        assert shifted.shape == x.shape
        for i in range(qlen):
            for j in range(mlen + i + 1):
                distance = mlen + i - j
                torch.testing.assert_close(shifted[..., i, j], x[..., i, klen - 1 - distance])


def naive_sinusoid(distance, dim):
    """R_d as Dai et al. define it: sines then cosines of d / 10000^(2k/dim)."""
    angles = [distance / 10000 ** (2 * k / dim) for k in range(dim // 2)]
    return torch.tensor([math.sin(a) for a in angles] + [math.cos(a) for a in angles])


def test_relative_attention_scores_match_the_four_terms_computed_naively():
    # Dai et al. 2019, Sec. 3.3: A_ij = q_i·k_j + q_i·W_R R_{i-j} + u·k_j + v·W_R R_{i-j},
    # computed here one (i, j) pair at a time and compared with the model's batched scores.
    torch.set_default_dtype(torch.float64)
    try:
        model = make_model({"preset": "txl-tiny"})
    finally:
        torch.set_default_dtype(torch.float32)
    cfg = model.cfg
    attn = model.layers[0].attn
    qlen, mlen, batch = 5, 3, 2
    klen = qlen + mlen
    h = torch.randn(batch, qlen, cfg.d_model, dtype=torch.float64)
    memory = torch.randn(batch, mlen, cfg.d_model, dtype=torch.float64)
    pos_enc = torch.stack([naive_sinusoid(d, cfg.d_model) for d in range(klen - 1, -1, -1)])
    u, v = model.r_w_bias.detach(), model.r_r_bias.detach()
    with torch.no_grad():
        scores, _ = attn.scores(h, memory, pos_enc.double(), u, v)

    inner = cfg.n_head * cfg.d_head
    w_q, w_k, _ = attn.qkv_net.weight.detach().split(inner, dim=0)
    w_r = attn.r_net.weight.detach()
    context = torch.cat([memory, h], dim=1)
    for b in range(batch):
        for head in range(cfg.n_head):
            rows = slice(head * cfg.d_head, (head + 1) * cfg.d_head)
            for i in range(qlen):
                q_i = w_q[rows] @ h[b, i]
                for j in range(mlen + i + 1):
                    k_j = w_k[rows] @ context[b, j]
                    r = w_r[rows] @ naive_sinusoid(mlen + i - j, cfg.d_model).double()
                    expected = q_i @ k_j + q_i @ r + u[head] @ k_j + v[head] @ r
                    expected = expected / math.sqrt(cfg.d_head)
                    torch.testing.assert_close(scores[b, head, i, j], expected)


def test_memory_equals_attending_over_the_whole_stream():
    # Building the memory from the preceding tokens (no grad) and attending to it must give the
    # same segment losses as a memory-free pass over [context; segment]: the first mem_len
    # positions of a causal pass see exactly the context, at the same relative distances.
    # In float64 and with sharpened attention (at init it is nearly uniform, which would hide
    # a wrong memory behind differences of 1e-5), the two must agree to rounding.
    mem_len, seq_len = 8, 10
    plain = make_model({"preset": "txl-tiny"}).double().eval()
    with torch.no_grad():
        for layer in plain.layers:
            layer.attn.qkv_net.weight.mul_(8.0)
            layer.attn.r_net.weight.mul_(8.0)
    with_memory = make_model({"preset": "txl-tiny", "carry_memory": True, "mem_len": mem_len})
    with_memory.double().load_state_dict(plain.state_dict())
    with_memory.eval()
    inputs, targets = random_batch(with_memory, seq_len=seq_len)
    full_targets = torch.cat([inputs[:, 1 : mem_len + 1], targets], dim=1)
    with torch.no_grad():
        whole_stream = plain(inputs, full_targets)[:, mem_len:]
        segment = with_memory(inputs, targets)
    torch.testing.assert_close(segment, whole_stream, atol=1e-6, rtol=1e-6)


def test_memory_is_used():
    model = make_model({"preset": "txl-tiny", "carry_memory": True, "mem_len": 8}).eval()
    inputs, targets = random_batch(model)
    altered = inputs.clone()
    altered[:, 2] = (altered[:, 2] + 1) % VOCAB  # a context token
    with torch.no_grad():
        assert (model(altered, targets) - model(inputs, targets)).abs().max() > 1e-4


def test_memory_receives_no_gradient():
    # Context tokens are drawn from ids 0..9, segment tokens from 10..22. The input embedding of
    # a token gets gradient only through the positions where it is fed in, so the rows of the
    # context-only ids must stay zero if the memory is a stop-gradient, and are nonzero when the
    # same tokens are fed through the graph (the memory-free pass over the whole stream).
    mem_len, seq_len = 8, 10
    model = make_model({"preset": "txl-tiny", "carry_memory": True, "mem_len": mem_len})
    generator = torch.Generator().manual_seed(3)
    context = torch.randint(0, 10, (2, mem_len), generator=generator)
    segment = torch.randint(10, VOCAB, (2, seq_len + 1), generator=generator)
    inputs = torch.cat([context, segment[:, :-1]], dim=1)
    model(inputs, segment[:, 1:]).sum().backward()
    embedding_grad = model.word_emb.weight.grad
    assert embedding_grad[:10].abs().max() == 0
    assert embedding_grad[10:].abs().max() > 0

    plain = make_model({"preset": "txl-tiny"})
    full_targets = torch.cat([inputs[:, 1:], segment[:, -1:]], dim=1)
    plain(inputs, full_targets)[:, mem_len:].sum().backward()
    assert plain.word_emb.weight.grad[:10].abs().max() > 0


def test_transformer_xl_refuses_more_context_than_its_memory():
    model = make_model({"preset": "txl-tiny", "carry_memory": True, "mem_len": 4})
    targets = torch.zeros(1, 6, dtype=torch.long)
    model(torch.zeros(1, 10, dtype=torch.long), targets)
    with pytest.raises(ValueError, match="context_len"):
        model(torch.zeros(1, 11, dtype=torch.long), targets)


# ---------------------------------------------------------------------------------------------
# RoPE


def test_rope_scores_depend_only_on_relative_position():
    rotary = RotaryEmbedding(dim=8, max_seq_len=64)
    q, k = torch.randn(10, 16), torch.randn(10, 16)
    scores = rotary(q) @ rotary(k).T
    for shift in (1, 17, 50):
        shifted = rotary(q, start=shift) @ rotary(k, start=shift).T
        torch.testing.assert_close(shifted, scores, atol=1e-5, rtol=1e-5)
    # ... and they do depend on it: the same vector pair scores differently at other distances.
    same = torch.randn(16).expand(10, 16)
    by_distance = (rotary(same) @ rotary(same).T)[-1]
    assert by_distance.std() > 1e-2


def test_rope_matches_complex_rotation_and_leaves_the_other_dimensions_alone():
    # RoFormer eq. 34 in complex form: pair k, (x_k, x_{k+d/2}), is multiplied by e^{i p θ_k},
    # θ_k = base^(-2k/d); the dimensions beyond d are not rotated.
    dim, head_dim, base = 6, 10, 10000.0
    rotary = RotaryEmbedding(dim=dim, max_seq_len=20, base=base)
    x = torch.randn(2, 7, head_dim, dtype=torch.float64)
    rotated = rotary(x, start=5)
    half = dim // 2
    for p in range(7):
        for k in range(half):
            angle = (5 + p) * base ** (-2 * k / dim)
            z = complex(x[0, p, k], x[0, p, k + half]) * complex(math.cos(angle), math.sin(angle))
            assert rotated[0, p, k].item() == pytest.approx(z.real, abs=1e-6)
            assert rotated[0, p, k + half].item() == pytest.approx(z.imag, abs=1e-6)
    torch.testing.assert_close(rotated[..., dim:], x[..., dim:])


# ---------------------------------------------------------------------------------------------
# Parameter counts


def test_txl_paper_has_the_54_6M_parameters_of_seed_000():
    vocab, d, n_layer, inner, d_inner = 33278, 512, 6, 8 * 64, 2048
    per_layer = (
        d * 3 * inner  # qkv_net
        + d * inner  # r_net (W_{k,R})
        + inner * d  # o_net
        + 2 * d  # LayerNorm after attention
        + (d * d_inner + d_inner)
        + (d_inner * d + d)  # feed-forward, with biases
        + 2 * d  # LayerNorm after feed-forward
    )
    hand_count = vocab * d + n_layer * per_layer + 2 * inner + vocab * d + vocab
    model = make_model({"preset": "txl-paper"}, vocab=vocab)
    assert count_parameters(model) == hand_count == 54_585_854
    assert count_parameters(model) == pytest.approx(54.6e6, rel=0.01)


def test_nanogpt_shakespeare_char_has_nanogpts_10_65M_parameters():
    # nanoGPT prints "number of parameters: 10.65M" for shakespeare_char: its count leaves out
    # the position embeddings (and the head, tied to the token embedding, counts once).
    model = make_model({"preset": "nanogpt-shakespeare-char"}, vocab=65)
    without_positions = count_parameters(model) - model.pos_emb.weight.numel()
    assert without_positions == 10_646_784
    assert f"{without_positions / 1e6:.2f}M" == "10.65M"


def test_gpt_small_is_the_160M_model_of_seeds_002_003():
    vocab, d, n_layer, d_mlp = 50280, 768, 12, 2048
    per_layer = 4 * d * d + 3 * d * d_mlp + 2 * d  # attention, SwiGLU, two RMSNorm gains
    with torch.device("meta"):  # shapes only: 162 M parameters need not be allocated
        model = build_model({"preset": "gpt-small"}, vocab)
    assert count_parameters(model) == 2 * vocab * d + n_layer * per_layer + d == 162_183_936


def test_tied_embeddings_count_once():
    tied = make_model({"preset": "gpt-tiny", "tie_embeddings": True})
    untied = make_model({"preset": "gpt-tiny"})
    assert tied.lm_head.weight is tied.tok_emb.weight
    assert count_parameters(untied) - count_parameters(tied) == VOCAB * 64


# ---------------------------------------------------------------------------------------------
# Initialisation, dropout, training


@pytest.mark.parametrize("preset", TINY_PRESETS)
def test_initialisation_is_determined_by_the_torch_seed(preset):
    first, again, other = (make_model({"preset": preset}, seed=s) for s in (0, 0, 1))
    for name, tensor in first.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], tensor, atol=0, rtol=0)
    assert any(
        not torch.equal(tensor, other.state_dict()[name])
        for name, tensor in first.state_dict().items()
    )


@pytest.mark.parametrize(
    "cfg",
    [{"preset": "txl-tiny"}, {"preset": "nanogpt-tiny"}, {"preset": "gpt-tiny", "dropout": 0.2}],
)
def test_dropout_is_active_in_train_and_off_in_eval(cfg):
    model = make_model(cfg)
    inputs, targets = random_batch(model)
    model.train()
    assert not torch.equal(model(inputs, targets), model(inputs, targets))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(inputs, targets), model(inputs, targets), atol=0, rtol=0)


@pytest.mark.parametrize("name", TINY_CONFIGS)
def test_a_tiny_model_learns_a_repeating_sequence(name):
    model = make_model(TINY_CONFIGS[name])
    pattern = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    stream = pattern.repeat(8)
    seq_len, k = 16, model.context_len
    starts = torch.arange(k, len(stream) - seq_len - 1, 5)
    inputs = torch.stack([stream[s - k : s + seq_len] for s in starts])
    targets = torch.stack([stream[s + 1 : s + seq_len + 1] for s in starts])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(inputs, targets).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------------------------------------
# Configs


def test_every_preset_resolves_to_its_architectures_fields():
    for name, preset in PRESETS.items():
        resolved = resolve_model_config({"preset": name})
        assert resolved["arch"] == preset["arch"]
        assert set(resolved) == MODEL_PARAMETERS[preset["arch"]] | {"arch"}
        assert all(resolved[key] == value for key, value in preset.items())


def test_overrides_replace_preset_fields():
    resolved = resolve_model_config({"preset": "txl-paper", "carry_memory": True, "n_layer": 3})
    assert resolved["carry_memory"] is True and resolved["n_layer"] == 3
    assert resolved["d_model"] == 512


def test_unknown_field_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="block_size") as error:
        resolve_model_config({"preset": "nanogpt-tiny", "block_size": 128})
    assert "max_seq_len" in str(error.value)


@pytest.mark.parametrize(
    "cfg",
    [
        {"preset": "no-such-model"},
        {"arch": "lstm"},
        {"n_layer": 2},
        {"preset": "gpt-tiny", "n_layer": True},
        {"preset": "gpt-tiny", "n_layer": 2.5},
        {"preset": "gpt-tiny", "n_head": 3},  # 64 not divisible by 3
        {"preset": "txl-tiny", "dropout": 1.5},
    ],
)
def test_invalid_configs_are_refused(cfg):
    with pytest.raises(ValueError):
        resolve_model_config(cfg)


def test_swiglu_width_defaults_to_eight_thirds_of_the_model_width():
    assert resolve_model_config({"arch": "gpt", "d_model": 768})["d_mlp"] == 2048
    assert resolve_model_config({"arch": "gpt", "d_model": 64, "n_head": 2})["d_mlp"] == 176


@pytest.mark.parametrize("name", TINY_CONFIGS)
def test_a_chunked_softmax_gives_the_losses_and_gradients_of_the_whole(name):
    """loss_chunk_tokens (models/loss.py): 5 tokens at a time over 2 x 12 targets (the last chunk
    shorter) against the whole batch at once, in eval mode so that dropout draws nothing."""
    whole = make_model(TINY_CONFIGS[name]).eval()
    chunked = make_model({**TINY_CONFIGS[name], "loss_chunk_tokens": 5}).eval()
    assert chunked.loss_chunk_tokens == 5 and whole.loss_chunk_tokens is None
    inputs, targets = random_batch(whole)
    losses = [model(inputs, targets) for model in (whole, chunked)]
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-6)
    assert losses[1].dtype == torch.float32 and losses[1].shape == targets.shape
    for loss in losses:
        loss.mean().backward()
    for (param_name, a), b in zip(whole.named_parameters(), chunked.parameters(), strict=True):
        if a.grad is None:
            assert b.grad is None, param_name
            continue
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-7, msg=param_name)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_loss_chunk_tokens_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="loss_chunk_tokens"):
        build_model({"preset": "gpt-tiny", "loss_chunk_tokens": bad}, VOCAB)
