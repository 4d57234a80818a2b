import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import step_syncs
from cycle_pkg.errors import ConfigError
from cycle_pkg.losses import cycle_loss, info_nce
from cycle_pkg.model import CycleContrast, build_backbone, build_head
from cycle_pkg.settings.config import load_config

from .helpers import PARAMS

BATCH = 16


def make(*overrides: str) -> CycleContrast:
    config = load_config(PARAMS, "test", list(overrides))
    torch.manual_seed(0)
    return CycleContrast(config.model, config.loss, seed=0)


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("components", "terms", "heads"),
    [
        ("intra_image", {"intra", "total"}, (True, False)),
        ("intra_video", {"intra", "total"}, (True, False)),
        ("intra_video+cycle", {"intra", "cycle", "total"}, (True, True)),
        ("cycle", {"cycle", "total"}, (False, True)),
    ],
)
def test_loss_components_decide_terms_heads_and_queues(components, terms, heads):
    model = make(f"loss.components={components}")
    losses = model(images(0), images(1))
    assert set(losses) == terms
    assert (model.encoder_q.intra_head is not None, model.encoder_q.cycle_head is not None) == heads
    assert hasattr(model, "intra_queue") == heads[0] and hasattr(model, "cycle_queue") == heads[1]


def test_total_is_intra_plus_lambda_cycle():
    losses = make("loss.lambda_cycle=0.3")(images(0), images(1))
    assert losses["total"].item() == pytest.approx(losses["intra"].item() + 0.3 * losses["cycle"].item(), rel=1e-6)


def test_backbones_and_heads_have_the_papers_shapes():
    r18, width18 = build_backbone("resnet18")
    r50, width50 = build_backbone("resnet50")
    assert (width18, width50) == (512, 2048)
    assert r18(torch.randn(2, 3, 64, 64)).shape == (2, 512)
    linear = build_head("linear", 512, 64)
    assert isinstance(linear, torch.nn.Linear) and linear.weight.shape == (64, 512)
    mlp = build_head("mlp", 2048, 128)
    assert [m.weight.shape for m in mlp if isinstance(m, torch.nn.Linear)] == [(2048, 2048), (128, 2048)]
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg16")


def test_key_encoder_starts_as_a_copy_and_follows_with_momentum():
    model = make()
    for q, k in zip(model.encoder_q.parameters(), model.encoder_k.parameters(), strict=True):
        assert torch.equal(q, k) and not k.requires_grad
    before_k = [k.clone() for k in model.encoder_k.parameters()]
    with torch.no_grad():
        for q in model.encoder_q.parameters():
            q.add_(1.0)
    model.momentum_update()
    m = model.model_cfg.momentum
    for q, k, k0 in zip(model.encoder_q.parameters(), model.encoder_k.parameters(), before_k, strict=True):
        assert torch.allclose(k, m * k0 + (1 - m) * q)


def test_queue_contents_are_the_key_embeddings():
    model = make()
    model.eval()
    reference = copy.deepcopy(model)
    positive = images(1)
    model(images(0), positive)
    reference.momentum_update()
    with torch.no_grad():
        k_intra, k_cycle = reference.encoder_k(positive)
    assert torch.allclose(model.intra_queue[:BATCH], F.normalize(k_intra, dim=1), atol=1e-5)
    assert torch.allclose(model.cycle_queue[:BATCH], F.normalize(k_cycle, dim=1), atol=1e-5)
    assert torch.equal(model.intra_queue[BATCH:], reference.intra_queue[BATCH:])
    assert model.pointers["intra_ptr"] == model.pointers["cycle_ptr"] == BATCH
    model(images(2), images(3))
    assert model.pointers["intra_ptr"] == 2 * BATCH


def test_queue_pointer_wraps_around():
    model = make()
    steps = model.model_cfg.intra_queue // BATCH
    for step in range(steps):
        model(images(step), images(step + 100))
    assert model.pointers["intra_ptr"] == 0
    assert model.pointers["cycle_ptr"] == (steps * BATCH) % model.model_cfg.cycle_queue


def test_shuffle_bn_returns_keys_in_input_order():
    model = make()  # key_bn_group = 8: two groups
    model.eval()  # in eval mode the grouping cannot matter, so any mismatch is a reordering bug
    x = images(5)
    shuffled = model.encode_keys(x)
    with torch.no_grad():
        direct = model.encoder_k(x)
    for ours, theirs in zip(shuffled, direct, strict=True):
        assert torch.allclose(ours, F.normalize(theirs, dim=1), atol=1e-5)


def test_shuffle_bn_normalises_groups_separately_in_training():
    model = make()
    model.train()
    x = images(5)
    grouped = model.encode_keys(x)[0]
    model.model_cfg.key_bn_group = BATCH
    whole = model.encode_keys(x)[0]
    assert not torch.allclose(grouped, whole, atol=1e-4)


def test_one_process_keys_use_the_statistics_of_one_gpus_share():
    """By default a single process BatchNorms its keys in shuffled groups of batch / 8 samples, the share
    of each GPU of the paper's 8 (32 of its batch of 256; 2 of this batch of 16)."""
    assert load_config(PARAMS, "paper").model.key_bn_group_size(256) == 32
    model = make("model.key_bn_group=null")
    model.train()
    x = images(5)
    shuffles = torch.Generator()
    shuffles.set_state(model.generator.get_state())
    order = torch.randperm(BATCH, generator=shuffles)
    reference = copy.deepcopy(model.encoder_k)  # train mode: each call normalises with its input's statistics
    with torch.no_grad():
        expected = torch.cat([reference(x[pair])[0] for pair in order.split(2)])[torch.argsort(order)]
        whole = reference(x)[0]
    keys = model.encode_keys(x)[0]
    assert torch.allclose(keys, F.normalize(expected, dim=1), atol=1e-5)
    assert not torch.allclose(keys, F.normalize(whole, dim=1), atol=1e-3)


def test_key_groups_must_divide_the_batch():
    with pytest.raises(
        ConfigError, match=r"model.key_bn_group \(5\) must be at least 2 and divide pretrain.batch_size"
    ):
        load_config(PARAMS, "test", ["model.key_bn_group=5"])
    with pytest.raises(ConfigError, match=r"pretrain.batch_size / 8 \(1\)"):
        load_config(PARAMS, "test", ["model.key_bn_group=null", "pretrain.batch_size=8", "model.intra_queue=64"])


def test_cycle_term_uses_a_random_neighbor_set_and_the_rest_as_negatives():
    model = make("loss.components=cycle")
    model.eval()
    reference = copy.deepcopy(model)
    query, positive = images(0), images(1)
    losses = model(query, positive)
    # Redo the step by hand with the same generator state: U = first m of a permutation of the queue.
    reference.momentum_update()
    with torch.no_grad():
        q_cycle = reference.encoder_q(query)[1]
        k_cycle = F.normalize(reference.encoder_k(positive)[1], dim=1)
    torch.randperm(BATCH, generator=reference.generator)  # the shuffle-BN permutation comes first
    order = torch.randperm(len(reference.cycle_queue), generator=reference.generator)
    m = reference.loss_cfg.neighbors
    expected = cycle_loss(
        q_cycle,
        k_cycle,
        reference.cycle_queue[order[:m]],
        reference.cycle_queue[order[m:]],
        reference.loss_cfg.temperature,
    )
    assert losses["cycle"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_kpp_needs_and_uses_a_view_of_the_query():
    model = make("loss.components=cycle", "loss.query_view_in_neighbors=true")
    with pytest.raises(ValueError, match="second view of the query"):
        model(images(0), images(1))
    with_view = model(images(0), images(1), images(0))["cycle"]
    assert torch.isfinite(with_view)


def test_kpp_embedding_setting_reaches_the_loss():
    """The same model, inputs and neighbour draw: k_++ as the view's key (the paper) or as the query
    itself (the authors' code) changes the cycle loss."""
    overrides = ("loss.components=cycle", "loss.query_view_in_neighbors=true")
    losses = {}
    for kpp in ("view", "query"):
        model = make(*overrides, f"loss.kpp_embedding={kpp}")
        model.eval()
        losses[kpp] = model(images(0), images(1), images(2))["cycle"].item()
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()) and losses["view"] != losses["query"]


def test_intra_term_is_info_nce_against_the_queue():
    model = make("loss.components=intra_video")
    model.eval()
    reference = copy.deepcopy(model)
    query, positive = images(0), images(1)
    loss = model(query, positive)["intra"]
    reference.momentum_update()
    with torch.no_grad():
        expected = info_nce(
            reference.encoder_q(query)[0], reference.encoder_k(positive)[0], reference.intra_queue, 0.07
        )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_generator_state_travels_in_the_state_dict():
    model = make()
    model(images(0), images(1))
    clone = make()
    clone.load_state_dict(model.state_dict())
    assert torch.equal(clone.generator.get_state(), model.generator.get_state())
    assert torch.equal(torch.randperm(50, generator=clone.generator), torch.randperm(50, generator=model.generator))


def test_training_steps_are_mocos_algorithm():
    """SGD steps of intra-video learning equal MoCo's algorithm written out by hand: query forward,
    momentum update, shuffled keys in BN groups, InfoNCE against the queue, enqueue. (Two steps: on
    noise images float rounding grows ~1e4-fold a step through 1x1 BatchNorm maps.)"""
    model = make("loss.components=intra_video")
    model.train()
    net = nn.Sequential(copy.deepcopy(model.encoder_q.backbone), copy.deepcopy(model.encoder_q.intra_head))
    key_net = copy.deepcopy(net)
    queue = model.intra_queue.clone()
    momentum = model.model_cfg.momentum
    shuffles = torch.Generator()
    shuffles.set_state(model.generator.get_state())
    ours = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.03, momentum=0.9)
    theirs = torch.optim.SGD(net.parameters(), lr=0.03, momentum=0.9)
    for step in range(2):
        query, positive = images(2 * step), images(2 * step + 1)
        loss = model(query, positive)["total"]
        ours.zero_grad()
        loss.backward()
        ours.step()

        q = F.normalize(net(query), dim=1)
        with torch.no_grad():
            for p_q, p_k in zip(net.parameters(), key_net.parameters(), strict=True):
                p_k.mul_(momentum).add_(p_q, alpha=1 - momentum)
            order = torch.randperm(BATCH, generator=shuffles)
            keys = torch.cat([key_net(half) for half in positive[order].chunk(2)])[torch.argsort(order)]
            k = F.normalize(keys, dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / model.loss_cfg.temperature
        expected = F.cross_entropy(logits, torch.zeros(BATCH, dtype=torch.long))
        theirs.zero_grad()
        expected.backward()
        theirs.step()
        queue[step * BATCH : (step + 1) * BATCH] = k  # two batches fit in the queue

        assert loss.item() == pytest.approx(expected.item(), rel=1e-5), step
    assert torch.allclose(model.intra_queue, queue, atol=1e-4)
    for ours_p, their_p in zip(model.encoder_k.parameters(), key_net.parameters(), strict=True):
        assert torch.allclose(ours_p, their_p, atol=1e-5)


def step_counts():
    """benchmarks/step_syncs.py's counters of host waits and aten ops."""
    return step_syncs.HostWaits(), step_syncs.OpCount()


def test_a_step_never_makes_the_host_wait_for_the_device():
    """No value read on the host and no blocking copy from pageable memory: queue pointers are Python
    ints, the permutations reach the device pinned and non-blocking."""
    model = make()
    model.train()
    waits, ops = step_counts()
    with waits, ops:
        model(images(0), images(1))["total"].backward()
    assert dict(waits.counts) == {} and ops.ops > 500
    updates = type(ops)()
    with updates:
        model.momentum_update()
    assert updates.ops < 10  # a few multi-tensor ops, not two per parameter (each encoder has 64)


def test_queue_pointers_travel_in_the_state_dict():
    model = make()
    model(images(0), images(1))
    state = model.state_dict()
    assert int(state["intra_ptr"]) == int(state["cycle_ptr"]) == BATCH
    clone = make()
    clone.load_state_dict(state)
    assert clone.pointers == {"intra_ptr": BATCH, "cycle_ptr": BATCH}
    assert "intra_ptr" in state  # the caller's state dict is left as it was
