"""Where text comes from and how it becomes ids.

Takes files, directories, JSON Lines, compressed files or in-memory text; gives documents (``sources``) and, through
a tokenizer (``tokenizer``: GPT-2 offline, the reference BPE) and its fast exact backends (``backends``, used only
behind a self-check), the 1-D array of token ids that every later stage reads. Imports no other stage.
"""
