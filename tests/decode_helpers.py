"""Shared by the decoder tests (test_joint, test_factored): logits peaked on given bins."""

import torch


def one_hot_logits(idx: torch.Tensor, q: int, scale: float = 50.0) -> torch.Tensor:
    """(B, H, W) indices -> (B, Q, H, W) logits peaked on them."""
    return torch.nn.functional.one_hot(idx, q).permute(0, 3, 1, 2).double() * scale
