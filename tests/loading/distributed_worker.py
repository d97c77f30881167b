"""Run under torchrun by tests/test_distributed.py: each rank loads its share and rank 0 writes what all saw."""

import json
import sys

import numpy as np
import torch.distributed as dist

from lmfeed import create_dataloader


def main(out_path: str) -> None:
    dist.init_process_group("gloo")
    ids = np.arange(2_000)  # distinct ids: a window's first id names it
    result = {}
    for drop_last in (True, False):
        loader = create_dataloader(ids, batch_size=4, max_length=8, stride=5, seed=3, drop_last=drop_last)
        seen = [int(x[0]) for epoch in range(2) for b in loader for x in b[0]]
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, {"rank": dist.get_rank(), "seen": seen, "batches": len(loader),
                                          "windows": len(loader.dataset)})
        result[str(drop_last)] = everyone
    if dist.get_rank() == 0:
        with open(out_path, "w") as f:
            json.dump(result, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
