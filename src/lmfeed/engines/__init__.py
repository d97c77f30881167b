"""Running ``prepare`` on an existing distributed engine (Ray): plan, encode parts on the workers, merge here.

``plan`` cuts the inputs into tasks (whole files; byte ranges of large ones at safe points), ``parts`` writes and
merges part stores, ``ray_engine`` drives a Ray cluster. The store that comes out has the bytes of the
single-machine ``prepare``. Ray itself is imported only when an engine runs (``pip install 'lmfeed[ray]'``).
"""
