"""The paper's equations against values worked out by hand (see each comment), and limits."""

import math

import pytest
import torch

from cycle_pkg.losses import cycle_loss, info_nce, soft_nearest_neighbor

E = math.e


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_info_nce_hand_computed():
    # sim(q, k+) = 1, sim(q, negatives) = 0 and -1; T = 1:
    # -log(e^1 / (e^1 + e^0 + e^-1)) = log(1 + e^-1 + e^-2) = 0.4076060
    loss = info_nce(t([1.0, 0.0]), t([1.0, 0.0]), t([0.0, 1.0], [-1.0, 0.0]), temperature=1.0)
    assert loss.item() == pytest.approx(0.4076060, abs=1e-6)


def test_info_nce_uses_cosine_similarity_and_temperature():
    # Scaling the inputs changes nothing; T = 0.5 doubles the logits: log(1 + e^-2 + e^-4) = 0.1438...
    loss = info_nce(t([3.0, 0.0]), t([0.5, 0.0]), t([0.0, 7.0], [-2.0, 0.0]), temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2) + math.exp(-4)), abs=1e-6)


def test_info_nce_is_the_batch_mean():
    # Query 1 as above (0.4076060); query 2 = [0, 1] has sim 0 with its positive [1, 0] and sims
    # 1 and 0 with the negatives: -log(1 / (1 + e + 1)) = log(2 + e) = 1.5514448.
    loss = info_nce(t([1.0, 0.0], [0.0, 1.0]), t([1.0, 0.0], [1.0, 0.0]), t([0.0, 1.0], [-1.0, 0.0]), 1.0)
    assert loss.item() == pytest.approx((0.4076060 + math.log(2 + E)) / 2, abs=1e-6)


def test_soft_nearest_neighbor_hand_computed():
    # sims 1 and 0, T = 1: weights e/(e+1) = 0.7310586 and 1/(e+1) = 0.2689414 (Eq. 4), q_hat = sum w u (Eq. 3)
    q_hat = soft_nearest_neighbor(t([2.0, 0.0]), t([1.0, 0.0], [0.0, 3.0]), temperature=1.0)
    assert q_hat.tolist()[0] == pytest.approx([0.7310586, 0.2689414], abs=1e-6)


def test_soft_nearest_neighbor_topk_keeps_the_most_similar():
    neighbors = t([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0])
    q_hat = soft_nearest_neighbor(t([1.0, 0.2]), neighbors, temperature=1.0, topk=1)
    assert q_hat.tolist()[0] == pytest.approx([1.0, 0.0], abs=1e-6)
    # top-2 of sims (0.981, 0.196, -0.981) keeps u1 and u2, renormalised over those two only
    s1, s2 = 1 / math.hypot(1, 0.2), 0.2 / math.hypot(1, 0.2)
    w1 = math.exp(s1) / (math.exp(s1) + math.exp(s2))
    q_hat = soft_nearest_neighbor(t([1.0, 0.2]), neighbors, temperature=1.0, topk=2)
    assert q_hat.tolist()[0] == pytest.approx([w1, 1 - w1], abs=1e-6)


def test_topk_equal_to_m_is_no_topk():
    torch.manual_seed(0)
    query, neighbors = torch.randn(5, 8), torch.randn(16, 8)
    full = soft_nearest_neighbor(query, neighbors, 0.1)
    assert torch.allclose(soft_nearest_neighbor(query, neighbors, 0.1, topk=16), full, atol=1e-6)


def test_query_view_joins_each_querys_own_neighbor_set():
    # U = {[0, 1]}, the query's view k_++ = [1, 0]: sims 0 and 1, weights 1/(1+e) and e/(1+e)
    q_hat = soft_nearest_neighbor(t([1.0, 0.0], [0.0, 1.0]), t([0.0, 1.0]), 1.0, query_view=t([1.0, 0.0], [0.0, 1.0]))
    assert q_hat.tolist()[0] == pytest.approx([E / (1 + E), 1 / (1 + E)], abs=1e-6)
    # second query: its view equals U's only element: q_hat = [0, 1]
    assert q_hat.tolist()[1] == pytest.approx([0.0, 1.0], abs=1e-6)
    # with top-1 the view wins for the first query
    top1 = soft_nearest_neighbor(t([1.0, 0.0]), t([0.0, 1.0]), 1.0, topk=1, query_view=t([1.0, 0.0]))
    assert top1.tolist()[0] == pytest.approx([1.0, 0.0], abs=1e-6)


def test_cycle_loss_hand_computed():
    # q = [1,0,0], U = {[1,0,0], [0,1,0]}, T = 1: q_hat = [0.7310586, 0.2689414, 0], unit norm
    # [0.9385079, 0.3452578, 0]; positive [0,1,0]: sim 0.3452578; negatives [1,0,0], [0,0,1]: sims
    # 0.9385079, 0. Loss = -0.3452578 + log(e^0.3452578 + e^0.9385079 + 1) = 1.2578639
    loss = cycle_loss(
        t([1.0, 0.0, 0.0]),
        t([0.0, 1.0, 0.0]),
        t([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
        t([1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
        1.0,
    )
    assert loss.item() == pytest.approx(1.2578639, abs=1e-6)


def test_cycle_loss_with_one_neighbor_equal_to_the_positive_is_info_nce_of_the_positive():
    # U = {k+}: q_hat = k+ whatever the query, so sim(q_hat, k+) = 1; with negative [1, 0] and
    # T = 0.5 the loss is log(1 + e^-2) = 0.1269280.
    loss = cycle_loss(t([1.0, 0.0]), t([0.0, 1.0]), t([0.0, 2.0]), t([1.0, 0.0]), temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)


def test_cycle_loss_nn_temperature_is_separate():
    # A tiny nearest-neighbour temperature makes q_hat the hard nearest neighbour [1, 0]; the
    # backward step at T = 1 then sees sims 0 (positive [0, 1]) and 1 (negative [1, 0]).
    loss = cycle_loss(t([1.0, 0.1]), t([0.0, 1.0]), t([1.0, 0.0], [0.0, 1.0]), t([1.0, 0.0]), 1.0, nn_temperature=1e-3)
    assert loss.item() == pytest.approx(math.log(1 + E), abs=1e-5)


def test_gradients_reach_the_query_only_through_the_cycle():
    query = torch.randn(4, 8, requires_grad=True)
    positive, neighbors, negatives = torch.randn(4, 8), torch.randn(10, 8), torch.randn(12, 8)
    cycle_loss(query, positive, neighbors, negatives, 0.07).backward()
    assert query.grad is not None and query.grad.abs().sum() > 0


def test_losses_run_in_float32_under_bfloat16_inputs_and_autocast():
    torch.manual_seed(0)
    query, positive, neighbors, negatives = torch.randn(4, 8), torch.randn(4, 8), torch.randn(6, 8), torch.randn(6, 8)
    exact = cycle_loss(query, positive, neighbors, negatives, 0.07)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.mm(query, negatives.T).dtype == torch.bfloat16  # autocast is on here ...
        under_autocast = cycle_loss(query, positive, neighbors, negatives, 0.07)  # ... but not in the loss
    assert under_autocast.dtype == torch.float32 and torch.equal(under_autocast, exact)
    loss = cycle_loss(query.bfloat16(), positive.bfloat16(), neighbors, negatives, 0.07)
    assert loss.dtype == torch.float32


def test_kpp_as_the_authors_code_adds_the_query_itself():
    # q = [1, 0], U = {[0, 1]}, view of the query's frame [0.6, 0.8]: sims 0 and 0.6, T = 1, so the
    # weights are 1/(1+e^0.6) = 0.3543437 (U) and e^0.6/(1+e^0.6) = 0.6456563 (k_++).
    q, u, view = t([1.0, 0.0]), t([0.0, 1.0]), t([0.6, 0.8])
    paper = soft_nearest_neighbor(q, u, 1.0, query_view=view)  # k_++ = the view: 0.3543 u + 0.6457 view
    assert paper.tolist()[0] == pytest.approx([0.6456563 * 0.6, 0.3543437 + 0.6456563 * 0.8], abs=1e-6)
    authors = soft_nearest_neighbor(q, u, 1.0, query_view=view, kpp_embedding="query")  # 0.3543 u + 0.6457 q
    assert authors.tolist()[0] == pytest.approx([0.6456563, 0.3543437], abs=1e-6)
    # with top-1 the k_++ column (sim 0.6) wins, and is the query itself
    top1 = soft_nearest_neighbor(q, u, 1.0, topk=1, query_view=view, kpp_embedding="query")
    assert top1.tolist()[0] == pytest.approx([1.0, 0.0], abs=1e-6)


def test_the_authors_kpp_carries_the_querys_gradient():
    # At a huge temperature the weights are 1/2 each whatever the query, so q_hat = (u + k_++) / 2:
    # d q_hat_y / d query_y at query [1, 0] is 1/2 through the unit query (d(q/|q|)/dq = I - qq^T),
    # and 0 when k_++ is the view, which does not depend on the query.
    grads = {}
    for kind in ("view", "query"):
        query = t([1.0, 0.0]).requires_grad_()
        soft_nearest_neighbor(query, t([0.0, 1.0]), 1e6, query_view=t([0.6, 0.8]), kpp_embedding=kind)[0, 1].backward()
        grads[kind] = query.grad.tolist()[0]
    assert grads["query"] == pytest.approx([0.0, 0.5], abs=1e-4)
    assert grads["view"] == pytest.approx([0.0, 0.0], abs=1e-4)


def test_cycle_loss_passes_the_kpp_variant_on():
    query, positive, u, negatives, view = t([1.0, 0.0]), t([0.0, 1.0]), t([0.0, 1.0]), t([1.0, 0.0]), t([0.6, 0.8])
    for kind in ("view", "query"):
        q_hat = soft_nearest_neighbor(query, u, 1.0, query_view=view, kpp_embedding=kind)
        expected = info_nce(q_hat, positive, negatives, 1.0)
        loss = cycle_loss(query, positive, u, negatives, 1.0, query_view=view, kpp_embedding=kind)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert cycle_loss(query, positive, u, negatives, 1.0, query_view=view, kpp_embedding="query").item() != (
        pytest.approx(cycle_loss(query, positive, u, negatives, 1.0, query_view=view).item())
    )
