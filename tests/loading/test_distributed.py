"""torch.distributed for real: two processes under torchrun, gloo backend, CPU."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_two_ranks_under_torchrun_share_the_epoch_disjointly_and_completely(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    out = tmp_path / "seen.json"
    # The worker script's folder first; a PYTHONPATH already set (a checkout's src/) is kept after it.
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", str(Path(__file__).parent / "distributed_worker.py"),
         str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for drop_last, ranks in result.items():
        windows = ranks[0]["windows"]
        all_starts = set(range(0, 5 * windows, 5))
        assert [r["rank"] for r in ranks] == [0, 1]
        assert ranks[0]["batches"] == ranks[1]["batches"]
        for epoch in range(2):
            per_epoch = [r["seen"][epoch * len(r["seen"]) // 2 : (epoch + 1) * len(r["seen"]) // 2] for r in ranks]
            a, b = set(per_epoch[0]), set(per_epoch[1])
            if drop_last == "True":
                assert not a & b  # disjoint
                assert len(a | b) == 2 * ranks[0]["batches"] * 4  # all but the tail that does not divide
            else:
                assert a | b == all_starts  # every window of the epoch, on some rank
        # the two epochs are different orders of the same windows
        assert ranks[0]["seen"][: len(ranks[0]["seen"]) // 2] != ranks[0]["seen"][len(ranks[0]["seen"]) // 2 :]
