"""lmfeed.GPT over packed rows: document_ids and reset positions make a packed row compute what each document alone
computes; `train(packing=...)` trains on packed rows and resumes bit for bit."""

from __future__ import annotations

import pytest
import torch

from lmfeed.loading.documents import documents_from_starts
from lmfeed.model.gpt import GPT
from lmfeed.model.train import TrainConfig, train
from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import ENDOFTEXT


@pytest.mark.parametrize("positional", ["learned", "rope", "alibi"])
def test_a_packed_row_gives_the_logits_of_each_document_alone(positional):
    torch.manual_seed(0)
    model = GPT(97, 32, 32, 2, 4, positional=positional).eval()
    lengths = [7, 12, 5, 8]
    tokens = torch.randint(0, 97, (1, sum(lengths)))
    starts = torch.zeros(1, sum(lengths), dtype=torch.bool)
    starts[0, torch.tensor([0, 7, 19, 24])] = True
    document_ids, position_ids = documents_from_starts(starts)
    with torch.no_grad():
        packed, _ = model(tokens, position_ids=position_ids, document_ids=document_ids)
        offset = 0
        for n in lengths:
            alone, _ = model(tokens[:, offset : offset + n])
            assert (packed[:, offset : offset + n] - alone).abs().max().item() <= 1e-5
            offset += n


@pytest.mark.slow
def test_training_on_packed_rows_resumes_bit_for_bit(tmp_path):
    text = tmp_path / "docs.txt"
    text.write_text(ENDOFTEXT.join(python_reference()[:6]), encoding="utf-8")
    settings = {"source": str(text), "embed_dim": 16, "num_layers": 1, "num_heads": 2, "context_length": 32,
                "batch_size": 4, "steps": 6, "eval_every": 3, "log_every": 1, "seed": 3, "device": "cpu",
                "packing": "best_fit"}
    whole = train(TrainConfig(**settings, out_dir=str(tmp_path / "whole")))
    train(TrainConfig(**settings, out_dir=str(tmp_path / "part")), stop_after=2)
    resumed = train(TrainConfig(**settings, out_dir=str(tmp_path / "part")), resume=True)
    assert whole.step == resumed.step == 6 and whole.val_loss == resumed.val_loss
    with pytest.raises(ValueError, match="packing"):
        TrainConfig(packing="tight").validated()
