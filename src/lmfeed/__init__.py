"""lmfeed: raw text in, the tensors a GPT-style language model trains on out.

The data flows one way::

    text --> tokenizer --> token store --> windows --> loader --> embeddings
             (BPE ids)     (memory map)    (input,     (batches    (token + position,
                                            target)     B x T)      B x T x D)

Shape letters, used in every docstring:
    B  batch size (``batch_size``)          T  tokens per window (``max_length``)
    D  embedding dimension (``embed_dim``)  H  attention heads

Example (the seed's pipeline)::

    >>> import torch, lmfeed
    >>> loader = lmfeed.create_dataloader(text, batch_size=8, max_length=4, stride=4, shuffle=False)
    >>> inputs, targets = next(iter(loader))            # (8, 4) int64 each
    >>> torch.manual_seed(123)
    >>> embed = lmfeed.InputEmbedding(vocab_size=50257, embed_dim=256, context_length=4)
    >>> embed(inputs).shape
    torch.Size([8, 4, 256])
"""

import signal as _signal  # first (no `from __future__`: its import is start-up time too)
import sys as _sys


def _exit_quietly(signum: int, frame: object) -> None:
    """Ctrl-C while the ``lmfeed`` command is still importing: exit as a shell would (128 + SIGINT), no traceback."""
    raise SystemExit(128 + signum)


# Only for the `lmfeed` command, and only until lmfeed.cli has loaded (it puts the default handler back, so that
# click and prepare's clean-up see KeyboardInterrupt as usual); `import lmfeed` in a program changes nothing.
if (_sys.argv and str(_sys.argv[0]).replace("\\", "/").rsplit("/", 1)[-1] in ("lmfeed", "lmfeed.exe")
        and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler):
    try:
        _signal.signal(_signal.SIGINT, _exit_quietly)
    except ValueError:  # not the main thread
        pass

import importlib  # noqa: E402 - after the handler: these imports are the start-up it covers
from typing import TYPE_CHECKING, Any  # noqa: E402

# Public name -> module that defines it. Imported on first use, so that `import lmfeed` (and the `lmfeed` command's
# start-up) does not pay for torch until a name that needs it is touched.
_EXPORTS = {
    "ENDOFTEXT": "lmfeed.text.tokenizer",
    "get_tokenizer": "lmfeed.text.tokenizer",
    "install_tiktoken_cache": "lmfeed.text.tiktoken_cache",
    "SlidingWindowDataset": "lmfeed.loading.windows",
    "WindowLoader": "lmfeed.loading.loader",
    "create_dataloader": "lmfeed.loading.loader",
    "create_train_val_loaders": "lmfeed.loading.loader",
    "DocumentBatch": "lmfeed.loading.batch",
    "document_boundaries": "lmfeed.loading.documents",
    "cu_seqlens": "lmfeed.loading.documents",
    "document_causal_mask": "lmfeed.embeddings.masks",
    "TokenEmbedding": "lmfeed.embeddings",
    "LearnedPositionalEmbedding": "lmfeed.embeddings",
    "SinusoidalPositionalEmbedding": "lmfeed.embeddings",
    "InputEmbedding": "lmfeed.embeddings",
    "RotaryEmbedding": "lmfeed.embeddings",
    "ALiBiBias": "lmfeed.embeddings",
    "RelativePositionBias": "lmfeed.embeddings",
    "RelativeKeyPositions": "lmfeed.embeddings",
    "TransformerXLPositions": "lmfeed.embeddings",
    "CausalSelfAttention": "lmfeed.embeddings",
    "KVCache": "lmfeed.embeddings",
    "TokenStore": "lmfeed.store.format",
    "GPT": "lmfeed.model.gpt",
    "prepare": "lmfeed._api",
    "train_tokenizer": "lmfeed.text.train_bpe",
    "load_tiktoken_file": "lmfeed.text.tiktoken_file",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"

if TYPE_CHECKING:
    from lmfeed._api import prepare as prepare
    from lmfeed.embeddings import (
        ALiBiBias as ALiBiBias,
        CausalSelfAttention as CausalSelfAttention,
        InputEmbedding as InputEmbedding,
        KVCache as KVCache,
        LearnedPositionalEmbedding as LearnedPositionalEmbedding,
        RelativeKeyPositions as RelativeKeyPositions,
        RelativePositionBias as RelativePositionBias,
        RotaryEmbedding as RotaryEmbedding,
        SinusoidalPositionalEmbedding as SinusoidalPositionalEmbedding,
        TokenEmbedding as TokenEmbedding,
        TransformerXLPositions as TransformerXLPositions,
    )
    from lmfeed.embeddings.masks import document_causal_mask as document_causal_mask
    from lmfeed.loading.batch import DocumentBatch as DocumentBatch
    from lmfeed.loading.documents import cu_seqlens as cu_seqlens, document_boundaries as document_boundaries
    from lmfeed.loading.loader import (
        WindowLoader as WindowLoader,
        create_dataloader as create_dataloader,
        create_train_val_loaders as create_train_val_loaders,
    )
    from lmfeed.loading.windows import SlidingWindowDataset as SlidingWindowDataset
    from lmfeed.model.gpt import GPT as GPT
    from lmfeed.store.format import TokenStore as TokenStore
    from lmfeed.text.tiktoken_cache import install_tiktoken_cache as install_tiktoken_cache
    from lmfeed.text.tiktoken_file import load_tiktoken_file as load_tiktoken_file
    from lmfeed.text.tokenizer import ENDOFTEXT as ENDOFTEXT, get_tokenizer as get_tokenizer
    from lmfeed.text.train_bpe import train_tokenizer as train_tokenizer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lmfeed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
