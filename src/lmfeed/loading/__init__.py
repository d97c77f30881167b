"""From a token stream to batches: windows, orders, blends and the DataLoader.

Takes a text, a file, ids or a store (``stream``); gives (input, target) windows of ``max_length`` every ``stride``
ids (``windows``), in an order that is a pure function of (seed, epoch) and shared across ranks (``sampler``), from
one source or a weighted blend (``blend``), batched ``(B, T)`` by ``create_dataloader`` (``loader``), with a state
that resumes exactly. Imports ``lmfeed.text`` and ``lmfeed.store``.
"""
