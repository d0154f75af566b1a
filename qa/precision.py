"""Which float precision the model runs at: fp32 everywhere, bf16 where the CPU computes it natively.

Measured (docs/scaling.md): on a CPU with native bf16 (AVX512-BF16 or AMX), MiniLM with its weights
cast to bf16 embeds passages about 2.2x faster and encodes a question faster than fp32, with vectors
within cosine 0.9999 of fp32; on a CPU without it, bf16 is emulated and several times slower. So `auto`
picks bf16 only where it is native. Asking for bf16 on a CPU without it runs fp32 and says so: a build
that is 5x slower would be worse than the small gain in nothing.
"""

from __future__ import annotations

from typing import Callable

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(probe: Callable[[], bool] | None = None) -> tuple[bool, str]:
    """(whether this CPU computes bf16 natively, why), from torch's oneDNN check, which looks for
    AVX512-BF16 / AMX on x86 and BF16 on Arm. `probe` replaces that check (tests)."""
    if probe is None:
        try:
            import torch

            probe = torch.ops.mkldnn._is_mkldnn_bf16_supported
        except (ImportError, AttributeError, RuntimeError):
            return False, "torch cannot tell whether this CPU has native bf16"
    try:
        native = bool(probe())
    except Exception:  # an unexpected torch build: assume the safe answer
        return False, "torch's bf16 check failed on this CPU"
    if native:
        return True, "this CPU computes bf16 natively (torch: mkldnn bf16 supported)"
    return False, "this CPU has no native bf16 (torch: mkldnn bf16 not supported), so bf16 would be emulated and slow"


def resolve(requested: str | None, probe: Callable[[], bool] | None = None) -> tuple[str, str]:
    """(precision to run, a sentence saying why) for a setting of auto, fp32 or bf16.

    auto -> bf16 where native, else fp32. bf16 without native support -> fp32, and the sentence says so.
    Any other value raises ValueError naming the allowed ones.
    """
    requested = (requested or "auto").strip().lower()
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested == "fp32":
        return "fp32", "fp32 was asked for"
    native, why = native_bf16(probe)
    if requested == "bf16":
        if native:
            return "bf16", "bf16 was asked for; " + why
        return "fp32", f"bf16 was asked for, but {why}; running fp32 instead"
    return ("bf16" if native else "fp32"), "auto: " + why
