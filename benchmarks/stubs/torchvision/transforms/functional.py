"""Stand-in: see the package docstring."""


def to_tensor(pic):  # noqa: ANN001, ANN201
    raise RuntimeError("torchvision is stubbed in lmfeed's benchmark environment: image transforms are not measured")
