"""The settings of a training run: one frozen dataclass, saved as ``config.json`` and in every checkpoint.

Importing this module does not import torch, so the command line can show the defaults in ``--help`` quickly.
"""

from __future__ import annotations

import dataclasses
import math

from lmfeed._validate import as_choice, as_int, as_probability, as_seed

__all__ = ["TrainConfig"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run is made of; saved as ``config.json`` and inside every checkpoint.

    The defaults train on the default corpus in a few minutes on 2 CPU cores (see the README's figures).
    """

    # data
    source: str | None = None  # None: the default corpus; else a text file, a store or a split directory
    # a name or tokenizer.json path for lmfeed.get_tokenizer, or bpe:N, a byte-level BPE of N ids trained on the
    # training split: GPT-2's 50,257-id output layer would be ~12x the work of bpe:4096's in a model this small
    tokenizer: str = "bpe:4096"
    # model (the shape: a resumed run must keep these)
    positional: str = "learned"  # one of lmfeed.embeddings.positional_kinds()
    embed_dim: int = 128
    num_layers: int = 4
    num_heads: int = 4
    context_length: int = 128  # also the windows' max_length (and stride: windows do not overlap)
    packing: str | None = None  # None: windows; "best_fit" | "crop": packed documents, attention masked to each
    dropout: float = 0.0
    tie_weights: bool = True
    # optimisation: AdamW, linear warm-up then cosine decay to lr / 10
    batch_size: int = 8  # windows per step (per rank under torchrun)
    steps: int = 300
    minutes: float | None = None  # stop (and save) after this much wall time, whatever the step
    lr: float = 3e-3
    warmup_steps: int | None = None  # default steps // 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # 0 turns clipping off
    # bookkeeping
    eval_every: int = 50
    log_every: int = 10
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda
    out_dir: str = "lmfeed-run"

    def validated(self) -> TrainConfig:
        """Check every field, naming the setting, its limit and the fix; return self."""
        from lmfeed.embeddings.describe import positional_kinds  # torch: imported only when checking

        as_choice("positional", self.positional, positional_kinds())
        for name in ("embed_dim", "num_layers", "num_heads", "context_length", "batch_size", "steps",
                     "eval_every", "log_every"):
            as_int(name, getattr(self, name), minimum=1)
        as_seed("seed", self.seed)
        if self.warmup_steps is not None:
            as_int("warmup_steps", self.warmup_steps, minimum=0)
        as_probability("dropout", self.dropout)
        as_choice("device", self.device, ("auto", "cpu", "cuda"))
        as_choice("packing", self.packing, (None, "best_fit", "crop"))
        for name, low in (("lr", 0.0), ("weight_decay", -1e-300), ("grad_clip", -1e-300)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= low:
                bound = "above 0" if low == 0.0 else "0 or more"
                raise ValueError(f"{name} must be a number {bound}, but got {value!r}.")
        if self.minutes is not None and (not isinstance(self.minutes, (int, float)) or not self.minutes > 0):
            raise ValueError(f"minutes must be above 0, but got {self.minutes!r}. Leave it out to run all the steps.")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}. Pick "
                             "num_heads among the divisors of embed_dim.")
        return self

    @property
    def warmup(self) -> int:
        return self.steps // 20 if self.warmup_steps is None else self.warmup_steps

    def lr_at(self, step: int) -> float:
        """The multiplier of ``lr`` for the update after ``step`` updates: linear warm-up, then cosine to 0.1."""
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))
