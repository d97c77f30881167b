"""``python -m lmfeed``: the ``lmfeed`` command (so that ``torchrun -m lmfeed train ...`` works)."""

from lmfeed.cli import main

if __name__ == "__main__":
    main(prog_name="lmfeed")
