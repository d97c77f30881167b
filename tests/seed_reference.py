"""The seed's dataset and loader, transcribed from its algorithm as an independent reference for the tests.

The seed's ``GPTDatasetV1`` tokenizes the text with ``allowed_special={"<|endoftext|>"}``, then for every
``i in range(0, len(ids) - max_length, stride)`` keeps ``ids[i:i+max_length]`` and ``ids[i+1:i+max_length+1]`` as
two tensors; ``create_dataloader_v1`` wraps it in a plain ``DataLoader``. Nothing of lmfeed is used here.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class SeedDataset(Dataset):
    def __init__(self, token_ids: list[int], max_length: int, stride: int) -> None:
        self.inputs, self.targets = [], []
        for i in range(0, len(token_ids) - max_length, stride):
            self.inputs.append(torch.tensor(token_ids[i : i + max_length]))
            self.targets.append(torch.tensor(token_ids[i + 1 : i + max_length + 1]))

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, idx: int):
        return self.inputs[idx], self.targets[idx]


def seed_dataloader(token_ids, batch_size=4, max_length=256, stride=128, shuffle=True, drop_last=True, num_workers=0):
    return DataLoader(SeedDataset(list(token_ids), max_length, stride), batch_size=batch_size, shuffle=shuffle,
                      drop_last=drop_last, num_workers=num_workers)
