"""The token store: a corpus tokenized once, kept on disk as a memory-mappable array.

Takes documents from ``lmfeed.text``; gives a directory that ``TokenStore.open`` maps without copying: ``format``
(the layout, its checks), ``prepare`` (tokenize into a store, in parallel, byte-identical for any worker count),
``writer`` (files appear whole: staging directory, atomic rename), ``encode_pool`` (the encode workers), ``merge``
(shards into one store) and ``export`` (nanoGPT's ``.bin``, ``.npy``). Imports ``lmfeed.text`` only.
"""
