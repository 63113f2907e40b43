"""Gradient (activation) checkpointing for the three transformer stacks of CogAgent.

Why: fine-tuning the real model keeps every layer's activations for the backward pass -- for the 18 B decoder at
a few hundred tokens that is gigabytes per example, the first thing that runs out on one GPU. A checkpointed
layer keeps only its input and recomputes the rest during the backward pass (about one more forward of compute).
Off by default and a no-op outside training, so inference and the golden numbers never see it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def run_layer(layer: nn.Module, enabled: bool, *args: Any) -> Any:
    """``layer(*args)``, checkpointed when ``enabled`` and the layer is training with gradients on. Non-reentrant
    checkpointing: it accepts any argument types, frozen inputs (LoRA) and tensors used outside the layer."""
    if enabled and layer.training and torch.is_grad_enabled():
        return checkpoint(layer, *args, use_reentrant=False)
    return layer(*args)
