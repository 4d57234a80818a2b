"""One process with a batch of 2B against two (gloo, on CPU) with B each: the same steps, so the
same weights, queues and loss, when both BatchNorm the keys in the same groups (the check that
caught all-gather gradient bugs in other self-supervised libraries).

The query encoder's BatchNorm uses each process's own batch (as MoCo's, without SyncBN), which no
single process can repeat: here it normalises with its running statistics in both runs, so that
every other difference (gradient averaging, gathered keys, shuffle-BN, queues, neighbour draws)
shows."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from cycle_pkg.jobs.preemption import REQUEUE, PreemptionFlag
from cycle_pkg.model import gather_from_all
from cycle_pkg.pretrain import runtime
from cycle_pkg.pretrain.runtime import Runtime
from cycle_pkg.pretrain.steps import train_step
from cycle_pkg.pretrain.training import build_training
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS

STEPS, PER_PROCESS, SIZE = 3, 8, 32
CPU = torch.device("cpu")


def views(step: int) -> dict[str, torch.Tensor]:
    """The global batch (2B images per view) of ``step``."""
    generator = torch.Generator().manual_seed(step)
    return {name: torch.randn(2 * PER_PROCESS, 3, SIZE, SIZE, generator=generator) for name in ("query", "positive")}


def run(rank: int, world: int) -> dict:
    """STEPS steps of this process's share of each global batch; its weights, queues and losses."""
    config = load_config(PARAMS, "test", [f"model.key_bn_group={PER_PROCESS}", "pretrain.batch_size=16"])
    training = build_training(config, "r18", Runtime(rank, world, CPU), 100, 100, None)
    training.model.train()
    for module in training.model.encoder_q.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    share = 2 * PER_PROCESS // world
    autocast = torch.autocast("cpu", enabled=False)
    losses = []
    for step in range(STEPS):
        batch = {name: view[rank * share : (rank + 1) * share] for name, view in views(step).items()}
        losses.append(train_step(training, batch, 0.5, autocast)["total"].item())
    weights = {name: p.detach().clone() for name, p in training.model.named_parameters()}
    queues = {name: b.clone() for name, b in training.model.named_buffers() if "queue" in name}
    return {"weights": weights, "queues": queues, "losses": losses}


def channels_last_images(rank: int) -> torch.Tensor:
    return (torch.arange(2 * 3 * 4 * 5.0).view(2, 3, 4, 5) + 1000 * rank).contiguous(memory_format=torch.channels_last)


def worker(rank: int, world: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        images = channels_last_images(rank)  # gathered as the key encoder's inputs on GPUs
        torch.save({**run(rank, world), "gathered": gather_from_all(images)}, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_with_b_each_step_as_one_with_2b(tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    alone = run(0, 1)
    for name, weight in alone["weights"].items():
        for other in ranks:
            torch.testing.assert_close(other["weights"][name], weight, rtol=1e-4, atol=1e-5, msg=name)
    assert alone["queues"].keys() == {"intra_queue", "cycle_queue"}
    for name, queue in alone["queues"].items():
        for other in ranks:
            torch.testing.assert_close(other["queues"][name], queue, rtol=1e-4, atol=1e-5, msg=name)
    mean = [(a + b) / 2 for a, b in zip(ranks[0]["losses"], ranks[1]["losses"], strict=True)]
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(alone["losses"]), rtol=1e-5, atol=1e-5)
    assert (
        alone["weights"]["encoder_q.backbone.conv1.weight"]
        .ne(ranks[0]["weights"]["encoder_k.backbone.conv1.weight"])
        .any()
    )


def test_several_processes_agree_on_a_preemption_every_few_steps(monkeypatch):
    """Agreeing is a collective and a wait for the device: every PREEMPTION_EVERY steps, not every step."""
    flag = PreemptionFlag(signals=())
    flag.requested = REQUEUE
    agreed = []
    monkeypatch.setattr(runtime.dist, "all_reduce", lambda tensor, op: agreed.append(float(tensor)))
    answers = [
        runtime.preemption_agreed(flag, Runtime(1, 2, CPU), step) for step in range(1, 2 * runtime.PREEMPTION_EVERY + 1)
    ]
    assert agreed == [REQUEUE, REQUEUE]
    assert [step for step, answer in enumerate(answers, 1) if answer] == [
        runtime.PREEMPTION_EVERY,
        2 * runtime.PREEMPTION_EVERY,
    ]
    assert runtime.preemption_agreed(flag, Runtime(0, 1, CPU), 3) == REQUEUE  # alone: at once, for nothing
