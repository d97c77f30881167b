"""Seeing what the other stages make: terminal tables of batches and matplotlib pictures of embeddings.

Takes ids, a store or embedding tables; gives text for the terminal (``table``) and PNG files (``plots``, Agg
backend, written whole). Sits on top: may import every stage.
"""
