"""Where tensors live: CUDA when there is one, else CPU; `AUTOGLM_DEVICE` overrides.

Mixed precision is worth it only on a GPU (bf16 where the card supports it, else fp16);
on CPU the autocast context is a no-op so results stay in float32 and deterministic.
"""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager

import torch

from schemas.settings import Settings


def select_device(settings: Settings | None = None) -> torch.device:
    """`settings.device` when it is not `auto`, else the first CUDA device, else CPU."""
    wanted = (settings.device if settings else "auto").strip().lower()
    if wanted and wanted != "auto":
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"AUTOGLM_DEVICE={wanted} but CUDA is not available: use 'cpu' or 'auto'")
        return device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def configure_threads(settings: Settings | None = None) -> int:
    """Set torch's intra-op threads: `AUTOGLM_TORCH_THREADS`, or every core up to 8.

    Past ~8 threads a small encoder gets slower, and several worker processes on one host
    each want their share; returns the count in force.
    """
    wanted = settings.torch_threads if settings else 0
    if wanted <= 0:
        wanted = max(
            1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        )
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def autocast(device: torch.device) -> AbstractContextManager[object]:
    """bf16 (or fp16 on older GPUs) autocast on CUDA; nothing on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
