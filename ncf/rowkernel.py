"""The row-wise AdamW update as one small C loop, built on first use with the system's C compiler.

In torch ops the update of a step's rows costs a gather of [w | m | v], a dozen element-wise ops on
the copies and a scatter back: on ML-25M-shaped tables that was 2-3x the dense fused step at ML-1M's
shape. The loop below updates each touched row in place in one pass. It is plain C called through
ctypes on the tensors' memory (no torch headers, so it builds in about a second); where no compiler
is found or the build fails, `ncf.rowwise` keeps its torch implementation, which computes the same.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCE = r"""
#include <math.h>
#include <stdint.h>

/* One AdamW step (or a catch-up without gradient) on the rows `rows` of buf (n, 3W) = [w | m | v]:
   decay owed since last[r] through step `upto`, the missed steps with zero gradient (dense Adam's
   momentum, a geometric sum), then the gradient row, as ncf.rowwise.RowAdamW._adam. */
void row_adamw(float *restrict buf, int64_t width, const int64_t *restrict rows, int64_t n_rows,
               const float *restrict grad, int64_t *restrict last, const double *log_decay, int64_t upto, int has_grad, double b1, double b2,
               double step_size, double eps_hat, double wd, int decoupled, int catch_up) {
    const double r = b1 / sqrt(b2), log_r = log(r), log_b1 = log(b1), log_b2 = log(b2);
    for (int64_t u = 0; u < n_rows; u++) {
        const int64_t row = rows[u];
        float *restrict w = buf + row * 3 * width;
        float *restrict m = w + width;
        float *restrict v = w + 2 * width;
        const float *restrict g = has_grad ? grad + u * width : 0;
        const int64_t seen = last[row];
        const float decay = (decoupled && wd != 0.0 && seen != upto) ? (float)exp(log_decay[upto] - log_decay[seen]) : 1.0f;
        int64_t k = upto - (has_grad ? 1 : 0) - seen;
        if (k < 0) k = 0;
        if (!catch_up) {
            for (int64_t j = 0; j < width; j++) {
                float wj = w[j] * decay;
                if (has_grad) {
                    float gj = g[j];
                    if (!decoupled && wd != 0.0) gj += (float)wd * wj;
                    m[j] = (float)b1 * m[j] + (float)(1 - b1) * gj;
                    v[j] = (float)b2 * v[j] + (float)(1 - b2) * gj * gj;
                    wj += (float)step_size * m[j] / (sqrtf(v[j]) + (float)eps_hat);
                }
                w[j] = wj;
            }
        } else {
            /* a row seen on the previous step (k = 0) needs no transcendental at all */
            const double kk = (double)k, kg = (double)(k + (has_grad ? 1 : 0));
            const float moved = k ? (float)(r * (1 - exp(kk * log_r)) / (1 - r)) : 0.0f;
            const float mdecay = k ? (float)exp(kg * log_b1) : (has_grad ? (float)b1 : 1.0f);
            const float vdecay = k ? (float)exp(kg * log_b2) : (has_grad ? (float)b2 : 1.0f);
            for (int64_t j = 0; j < width; j++) {
                float wj = w[j] * decay;
                float num = m[j] * moved;
                float mj = m[j] * mdecay, vj = v[j] * vdecay;
                if (has_grad) {
                    float gj = g[j];
                    if (!decoupled && wd != 0.0) gj += (float)wd * wj;
                    mj += (float)(1 - b1) * gj;
                    vj += (float)(1 - b2) * gj * gj;
                    num += mj;
                }
                m[j] = mj;
                v[j] = vj;
                w[j] = wj + (float)step_size * num / (sqrtf(vj) + (float)eps_hat);
            }
        }
        last[row] = upto;
    }
}
"""

# -fno-math-errno lets sqrtf be one instruction and the loops vectorise (with errno it is a libm call
# per element: 12 ms a step at ML-25M's shape instead of ~2); no -ffast-math, so the arithmetic stays
# IEEE as torch's. No -march=native: the built file may be shared by machines of one architecture.
CFLAGS = ("-O3", "-std=c99", "-fno-math-errno", "-shared", "-fPIC")

_lib: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable


def _build() -> ctypes.CDLL | bool:
    if os.environ.get("NCF_NO_KERNEL"):
        return False
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        return False
    key = hashlib.sha256(f"{SOURCE}|{CFLAGS}|{platform.machine()}|{compiler}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("NCF_CACHE_DIR") or Path.home() / ".cache" / "ncf").expanduser() / "kernels"
    lib = base / f"rowwise-{key}.so"
    if not lib.exists():
        try:
            base.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=base) as tmp:
                src = Path(tmp) / "rowwise.c"
                src.write_text(SOURCE)
                out = Path(tmp) / "rowwise.so"
                subprocess.run([compiler, *CFLAGS, "-o", str(out), str(src), "-lm"],
                               check=True, capture_output=True, timeout=120)
                os.replace(out, lib)  # atomic: a concurrent build finds a whole file or none
        except (OSError, subprocess.SubprocessError):
            return False
    try:
        dll = ctypes.CDLL(str(lib))
    except OSError:
        return False
    f = dll.row_adamw
    p, i64, dbl, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
    f.argtypes = [p, i64, p, i64, p, p, p, i64, c_int, dbl, dbl, dbl, dbl, dbl, c_int, c_int]
    f.restype = None
    return dll


def available() -> bool:
    global _lib
    if _lib is None:
        _lib = _build()
    return bool(_lib)


def row_adamw(buf: torch.Tensor, width: int, rows: torch.Tensor, grad: torch.Tensor | None, last: torch.Tensor,
              log_decay: torch.Tensor, upto: int, *, b1: float, b2: float, step_size: float, eps_hat: float,
              wd: float, decoupled: bool, catch_up: bool) -> None:
    """In place on buf's `rows` (int64, unique) and `last`; see SOURCE. CPU float32 contiguous only."""
    assert _lib, "call available() first"
    if grad is not None:
        grad = grad.contiguous()
    _lib.row_adamw(buf.data_ptr(), width, rows.data_ptr(), len(rows), grad.data_ptr() if grad is not None else None,
                   last.data_ptr(), log_decay.data_ptr(), upto, grad is not None, b1, b2, step_size, eps_hat, wd,
                   decoupled, catch_up)


def usable(buf: torch.Tensor) -> bool:
    return buf.device.type == "cpu" and buf.dtype == torch.float32 and buf.is_contiguous() and available()
