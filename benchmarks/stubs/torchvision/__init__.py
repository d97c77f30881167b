"""A stand-in for torchvision, which the benchmark's peers import but never use (the registry's build is CUDA-only).

Mosaic ``streaming`` imports ``torchvision.datasets.VisionDataset`` and ``torchvision.transforms.functional.to_tensor``
at import time for its image datasets; the benchmark serves token ids only, so anything here that is called raises.
"""

__version__ = "0.0.0+lmfeed-bench-stub"
