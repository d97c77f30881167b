"""``lmfeed embed``: tokenize a text and show each token's embedding, its position's, and their sum."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from lmfeed.embeddings.input import Positional


@click.command(name="embed", short_help="Show a text's token + position embeddings.")
@click.argument("text")
@click.option("--embed-dim", default=256, show_default=True, help="Embedding dimension (D).")
@click.option("--context-length", default=1024, show_default=True, help="Longest sequence; the learned table's size.")
@click.option("--positional", type=click.Choice(["learned", "sinusoidal", "none"]), default="learned",
              show_default=True, help="Absolute position scheme added to the token embeddings.")
@click.option("--seed", default=123, show_default=True, help="torch.manual_seed before the tables are drawn.")
@click.option("--values", "num_values", default=4, show_default=True,
              help="How many leading values to show per vector.")
@click.option("--max-tokens", default=16, show_default=True, help="Show at most this many tokens (all are embedded).")
@click.option("--json", "as_json", is_flag=True, help="Print ids, pieces, the shown values and the shapes as JSON.")
@click.option("--tokenizer", default="gpt2", show_default=True,
              help="gpt2, or a tokenizer.json: its ids and its vocab_size.")
def command(text: str, embed_dim: int, context_length: int, positional: Positional, seed: int, num_values: int,
            max_tokens: int, as_json: bool, tokenizer: str) -> None:
    """Embed TEXT as a GPT-2-style model at init would: token embedding + position embedding, per token.

    TEXT is encoded with GPT-2's BPE (a literal <|endoftext|> becomes its special id); "-" reads it from stdin.
    The tables are drawn after torch.manual_seed(SEED), token table first, as the seed's two nn.Embedding layers.

    \b
    Example:
        lmfeed embed "Hello world"
        lmfeed embed "The cat sat on the mat" --positional sinusoidal --embed-dim 8
    """
    import torch

    from lmfeed._validate import as_int, as_seed
    from lmfeed.embeddings import InputEmbedding
    from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer
    from lmfeed.viz.table import visible_piece

    num_values = as_int("values", num_values)
    as_seed("--seed", seed)
    max_tokens = as_int("max_tokens", max_tokens)
    if text == "-" and (sys.stdin is None or sys.stdin.closed):  # `<&-`: Python sets sys.stdin to None
        raise ValueError("stdin ('-') is closed: there is no text to read. Pipe it in (`echo Hello | lmfeed embed -`) "
                         "or pass TEXT.")
    text = _strict_text(sys.stdin.buffer.read() if text == "-" else text, "stdin" if text == "-" else "TEXT")
    enc = get_tokenizer(tokenizer)
    eos = getattr(enc, "eos_name", None) or ENDOFTEXT
    ids = enc.encode(text, allowed_special={eos} & enc.special_tokens_set)
    if not ids:
        raise ValueError("TEXT is empty: there is no token to embed. Pass some text, e.g. lmfeed embed 'Hello world'.")
    context_length = as_int("context_length", context_length)
    if len(ids) > context_length:
        raise ValueError(
            f"TEXT is {len(ids):,} tokens, but --context-length is {context_length:,}. "
            f"Pass --context-length {len(ids)} or more, or a shorter TEXT."
        )
    torch.manual_seed(seed)
    embedding = InputEmbedding(enc.n_vocab, embed_dim, context_length=context_length, positional=positional)
    token_ids = torch.tensor(ids)  # (T,)
    with torch.no_grad():
        x = embedding(token_ids)  # (T, D); ValueError when T > context_length
        tok = embedding.token_embedding(token_ids)  # (T, D)
        pe = embedding.position_embedding
        pos = pe(torch.arange(len(ids))) if pe is not None else None  # (T, D)
    n, d = len(ids), embedding.embed_dim
    k = min(num_values, d)

    if as_json:
        click.echo(json.dumps({
            "text": text, "embed_dim": d, "context_length": context_length, "positional": positional, "seed": seed,
            "tokens": [{
                "position": t, "id": i,
                "piece": enc.decode_single_token_bytes(i).decode("utf-8", errors="backslashreplace"),
                "token": tok[t, :k].tolist(),
                "position_embedding": pos[t, :k].tolist() if pos is not None else None,
                "input": x[t, :k].tolist(),
            } for t, i in enumerate(ids)],
            "shapes": {"token_ids": [n], "token_embeddings": [n, d],
                       "pos_embeddings": [n, d] if pos is not None else None, "input_embeddings": [n, d]},
        }, ensure_ascii=False))
        return

    echo = click.echo
    echo(f"torch.manual_seed({seed}); {_table_line(enc.n_vocab, d, context_length, positional)}")
    echo(f"{n:,} GPT-2 tokens; the first {k} of the {d} values of each vector\n")
    for t, i in enumerate(ids[:max_tokens]):
        echo(f"position {t}   id {i}   {visible_piece(enc, i)}")
        echo(f"    token embedding      {_values(tok[t], k)}")
        if pos is not None:
            echo(f"  + position embedding   {_values(pos[t], k)}")
            echo(f"  = input embedding      {_values(x[t], k)}")
    if n > max_tokens:
        echo(f"... {n - max_tokens:,} more tokens not shown (--max-tokens)")
    rows = [(f"token_ids = tensor({_ids_text(ids)})", (n,)),
            ("token_embeddings = token_embedding(token_ids)", (n, d))]
    if pos is not None:
        rows += [(f"pos_embeddings = {positional}_embedding(arange({n}))", (n, d)),
                 ("input_embeddings = token_embeddings + pos_embeddings", (n, d))]
    else:
        rows += [("input_embeddings = token_embeddings (no absolute positions)", (n, d))]
    echo("\nshapes")
    left = max(len(code) for code, _ in rows) + 3
    for code, shape in rows:
        echo(f"  {code.ljust(left)}{_shape(shape)}")


def _strict_text(raw: bytes | str, where: str) -> str:
    """TEXT as UTF-8, or an error with the byte offset: never U+FFFD put in silently.

    Python hands undecodable bytes of argv over as lone surrogates (U+DC80..U+DCFF), which tiktoken would turn
    into U+FFFD; stdin is read as bytes and decoded here.
    """
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{where} is not valid UTF-8: byte {exc.start:,} is 0x{data[exc.start]:02x} ({exc.reason}). "
            "Convert it to UTF-8 (e.g. iconv -t UTF-8)."
        ) from None


def _table_line(vocab: int, d: int, context_length: int, positional: str) -> str:
    if positional == "learned":
        return f"nn.Embedding({vocab}, {d}) + nn.Embedding({context_length}, {d})"
    if positional == "sinusoidal":
        return f"nn.Embedding({vocab}, {d}) + sinusoidal({d})"
    return f"nn.Embedding({vocab}, {d}), no positions"


def _values(row, k: int) -> str:  # noqa: ANN001 - a (D,) tensor
    more = ", ..." if k < row.shape[0] else ""
    return "[" + ", ".join(f"{v + 0.0:+.4f}" for v in row[:k].tolist()) + more + "]"


def _ids_text(ids: list[int], limit: int = 6) -> str:
    shown = ", ".join(map(str, ids[:limit]))
    return f"[{shown}{', ...' if len(ids) > limit else ''}]"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")
