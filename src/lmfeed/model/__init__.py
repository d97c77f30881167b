"""The model stage: a small GPT built on lmfeed's embeddings, its training loop, checkpoints and generation.

Shape letters as everywhere: B batch, T tokens, D ``embed_dim``, H heads, V ``vocab_size``.

- :mod:`lmfeed.model.gpt`: :class:`GPT`, GPT-2's decoder with every position scheme lmfeed has;
- :mod:`lmfeed.model.train`: :class:`TrainConfig` and :func:`train`, nanoGPT's ``train.py`` as a function;
- :mod:`lmfeed.model.checkpoint`: checkpoints that resume bit for bit;
- :mod:`lmfeed.model.generate`: sampling text from a trained model;
- :mod:`lmfeed.model.baseline`: the unigram cross-entropy a model must beat, and the position-structure figure;
- :mod:`lmfeed.model.compare`: the position schemes trained short and evaluated long (Press et al. 2022).
"""
