"""Data-parallel training on PyTorch DDP, launched by ``torchrun`` (one process per GPU, or per CPU
worker with the gloo backend).

- The process group comes from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``): NCCL on CUDA, gloo otherwise.
- :class:`StepSampler` is the distributed sampler: the *global* batch of step ``k`` depends only on
  ``(seed, k)``; rank ``r`` of ``W`` takes items ``r, r + W, ...`` of it. The global batch size is a
  training option, so a run resumed with another world size draws the same data and keeps its
  learning rate.
- Rank 0 alone writes logs, samples and checkpoints (which hold the unwrapped modules' state, so
  they load in any world size, or without DDP); every rank waits for it.
- At the end of a run every rank hashes its weights and rank 0 checks they agree (and records the
  hashes in ``RUN_DIR/ranks.json``); a difference stops the run with an error.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class StepSampler:
    """Which samples each rank trains on at each step."""
    n: int
    batch: int               # global batch
    seed: int = 0
    rank: int = 0
    world: int = 1

    def __post_init__(self):
        if self.batch % self.world:
            raise ValueError(f"the batch ({self.batch}) must be a multiple of the number of processes "
                             f"({self.world})")

    def indices(self, step: int) -> tuple[list[int], np.random.Generator]:
        """(this rank's sample indices, an rng for its augmentations) for ``step``."""
        rng = np.random.default_rng([self.seed, step])
        everyone = rng.integers(0, self.n, size=self.batch)
        if self.world == 1:
            return [int(i) for i in everyone], rng
        # each rank's augmentations: still a function of (seed, step, rank) only
        return [int(i) for i in everyone[self.rank::self.world]], np.random.default_rng([self.seed, step, 1 + self.rank])


class Distributed:
    """The process group of this run (or a stand-in for a single process)."""

    def __init__(self, enabled: bool = False):
        self.enabled = bool(enabled)
        self.rank, self.world, self.local_rank = 0, 1, 0
        self.backend = None
        if not self.enabled:
            return
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise ValueError("--distributed needs a launcher: start the command with "
                             "'torchrun --nproc_per_node N -m engine.cli train ...' (see README)")
        import torch.distributed as dist

        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        use_cuda = torch.cuda.is_available() and os.environ.get("SEMSTUDIO_DDP_BACKEND", "") != "gloo"
        self.backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group(self.backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str = "auto") -> torch.device:
        if self.enabled and self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        from ..devices import pick_device
        return pick_device("cpu" if self.enabled else requested)

    def wrap(self, module):
        """DDP around ``module`` (SyncBatchNorm on CUDA); the module itself when not distributed."""
        if not self.enabled or module is None:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        if self.backend == "nccl":
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
            return DDP(module, device_ids=[self.local_rank])
        return DDP(module)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist
            dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average of ``values`` over the ranks (for logging)."""
        if not self.enabled or not values:
            return values
        import torch.distributed as dist

        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t)}

    def sync_buffers(self, *modules) -> None:
        """Rank 0's buffers (BatchNorm statistics, spectral-norm vectors) to every rank."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for m in modules:
            if m is None:
                continue
            for b in m.buffers():
                dist.broadcast(b.data, 0)

    def check_same_weights(self, *modules) -> list[str]:
        """sha256 of each rank's parameters and buffers (rank order); raises if they differ."""
        h = hashlib.sha256()
        for m in modules:
            if m is None:
                continue
            for k, v in m.state_dict().items():
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        digest = h.hexdigest()
        if not self.enabled:
            return [digest]
        import torch.distributed as dist

        everyone: list = [None] * self.world
        dist.all_gather_object(everyone, digest)
        if len(set(everyone)) != 1:
            raise RuntimeError(f"weights differ across ranks after training: {everyone}")
        return everyone

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
