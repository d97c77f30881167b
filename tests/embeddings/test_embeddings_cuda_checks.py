"""Item 28 of #15: on CUDA the id checks run on the device, with no sync per forward; on the CPU the clear error
stays. The GPU tests are skipped without CUDA."""

import subprocess
import sys
import textwrap

import pytest
import torch

from lmfeed import InputEmbedding, LearnedPositionalEmbedding, TokenEmbedding

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_on_the_cpu_a_bad_id_is_still_a_clear_error_naming_it():
    with pytest.raises(ValueError, match=r"token_ids must be < vocab_size=10, but contains 12 at index \(1,\)"):
        TokenEmbedding(10, 4)(torch.tensor([3, 12]))
    with pytest.raises(ValueError, match=r"position_ids must not be negative, but contains -1"):
        LearnedPositionalEmbedding(4, 4)(torch.tensor([0, -1]))


@cuda
def test_no_device_sync_in_a_forward():
    embedding = InputEmbedding(50257, 64, context_length=32, device="cuda")
    ids = torch.randint(0, 50257, (8, 32), device="cuda")
    positions = torch.arange(32, device="cuda").expand(8, 32)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call now raises
    try:
        embedding(ids)
        embedding(ids, position_ids=positions)
        TokenEmbedding(100, 8, device="cuda")(ids % 100)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
def test_a_bad_id_on_cuda_fails_with_the_message():
    # a device-side assert poisons the CUDA context, so it runs in a process of its own
    code = textwrap.dedent("""
        import torch
        from lmfeed import TokenEmbedding
        out = TokenEmbedding(10, 4, device="cuda")(torch.tensor([3, 12], device="cuda"))
        torch.cuda.synchronize()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert "token_ids must be in [0, vocab_size=10)" in done.stderr or "device-side assert" in done.stderr
