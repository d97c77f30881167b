"""Embeddings: token ids ``(B, T)`` -> vectors ``(B, T, D)``, and the family of position schemes.

Shape letters: B batch, T tokens (sequence length), D embedding dim (``embed_dim``), H heads.

Absolute schemes are added to the token embeddings (:class:`InputEmbedding` does it); relative schemes act
in attention (:class:`CausalSelfAttention`). Every module takes ``position_ids`` so that offsets (decoding
with a cache) and per-document restarts work the same way everywhere. Calling conventions:

- additive: ``pe(position_ids)``, ``(T,)`` or ``(B, T)`` -> ``(T, D)`` or ``(B, T, D)``;
- rotary: ``rope(q, k, position_ids=None)`` on ``(B, H, T, head_dim)`` -> the rotated pair;
- biases: ``bias(q_len, k_len)`` -> float32 ``(H, q_len, k_len)``, for ``scaled_dot_product_attention``;
- distance tables (BERT's relative keys, Transformer-XL): the logit term ``(B, H, T_q, T_k)`` from q (and k) and
  the positions; :class:`KVCache` carries keys, values and positions from one call of attention to the next.
"""

from lmfeed.embeddings.absolute import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding
from lmfeed.embeddings.alibi import ALiBiBias, alibi_slopes
from lmfeed.embeddings.attention import CausalSelfAttention
from lmfeed.embeddings.describe import describe_positional, positional_kinds, relative_tables
from lmfeed.embeddings.input import InputEmbedding
from lmfeed.embeddings.kv_cache import KVCache
from lmfeed.embeddings.relative_key import RelativeKeyPositions
from lmfeed.embeddings.rotary import RotaryEmbedding, half_to_interleaved, interleaved_to_half
from lmfeed.embeddings.t5 import RelativePositionBias, relative_position_bucket
from lmfeed.embeddings.token import TokenEmbedding
from lmfeed.embeddings.transformer_xl import TransformerXLPositions

__all__ = [
    "ALiBiBias",
    "CausalSelfAttention",
    "InputEmbedding",
    "KVCache",
    "LearnedPositionalEmbedding",
    "RelativeKeyPositions",
    "RelativePositionBias",
    "RotaryEmbedding",
    "SinusoidalPositionalEmbedding",
    "TokenEmbedding",
    "TransformerXLPositions",
    "alibi_slopes",
    "describe_positional",
    "half_to_interleaved",
    "interleaved_to_half",
    "positional_kinds",
    "relative_position_bucket",
    "relative_tables",
]
