"""Stand-in: see the package docstring."""


class VisionDataset:
    def __init__(self, *args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("torchvision is stubbed in lmfeed's benchmark environment: image datasets are not measured")


class CIFAR10(VisionDataset):
    pass
