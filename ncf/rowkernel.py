"""The embedding tables' optimizer steps as small C loops, built on first use with the system's C compiler.

- `row_adamw`: the row-wise AdamW update (ncf.rowwise). In torch ops the update of a step's rows costs
  a gather of [w | m | v], a dozen element-wise ops on the copies and a scatter back: on ML-25M-shaped
  tables that was 2-3x the dense fused step at ML-1M's shape. The loop updates each touched row in
  place in one pass.
- `scatter_rows` and `table_adamw`: torch's dense AdamW step to the bit, without its dense gradient
  (ncf.tablewise): the batch's rows are added into a kept buffer that the update zeroes as it reads.

Plain C called through ctypes on the tensors' memory (no torch headers, so it builds in about a
second); where no compiler is found or the build fails, the trainer keeps torch's ops, which compute
the same.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

SOURCE = r"""
#include <math.h>
#include <pthread.h>
#include <stdint.h>

/* One AdamW step (or a catch-up without gradient) on the rows `rows` of buf (n, 3W) = [w | m | v]:
   decay owed since last[r] through step `upto`, the missed steps with zero gradient (dense Adam's
   momentum, a geometric sum), then the gradient row, as ncf.rowwise.RowAdamW._adam. The gradient rows
   are zeroed once read, so the caller's buffer is clean for the next step. */
struct row_args {
    float *buf; int64_t width; const int64_t *rows; float *grad; int64_t *last; const double *log_decay;
    int64_t upto; int has_grad; double b1, b2, step_size, eps_hat, wd; int decoupled, catch_up;
    int64_t lo, hi;
};

static void *row_adamw_span(void *arg) {
    const struct row_args *a = (const struct row_args *)arg;
    const int64_t width = a->width, upto = a->upto;
    const int has_grad = a->has_grad, decoupled = a->decoupled;
    const double b1 = a->b1, b2 = a->b2, step_size = a->step_size, eps_hat = a->eps_hat, wd = a->wd;
    const double r = b1 / sqrt(b2), log_r = log(r), log_b1 = log(b1), log_b2 = log(b2);
    for (int64_t u = a->lo; u < a->hi; u++) {
        const int64_t row = a->rows[u];
        float *restrict w = a->buf + row * 3 * width;
        float *restrict m = w + width;
        float *restrict v = w + 2 * width;
        float *restrict g = has_grad ? a->grad + u * width : 0;
        const int64_t seen = a->last[row];
        const float decay = (decoupled && wd != 0.0 && seen != upto) ? (float)exp(a->log_decay[upto] - a->log_decay[seen]) : 1.0f;
        int64_t k = upto - (has_grad ? 1 : 0) - seen;
        if (k < 0) k = 0;
        if (!a->catch_up) {
            for (int64_t j = 0; j < width; j++) {
                float wj = w[j] * decay;
                if (has_grad) {
                    float gj = g[j];
                    g[j] = 0.0f;
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
                    g[j] = 0.0f;
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
        a->last[row] = upto;
    }
    return 0;
}

/* The rows are unique, so spans of them can be updated side by side: on large tables each row is a few
   cache misses, and a second core overlaps them. Threads are started per call (tens of microseconds)
   and joined, never left spinning, so a busy second core costs a wait, not a fight. */
#define MAX_THREADS 8
void row_adamw(float *buf, int64_t width, const int64_t *rows, int64_t n_rows, float *grad, int64_t *last,
               const double *log_decay, int64_t upto, int has_grad, double b1, double b2, double step_size,
               double eps_hat, double wd, int decoupled, int catch_up, int n_threads) {
    struct row_args args[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if (n_threads < 1 || n_rows < 256 * n_threads) n_threads = 1;
    for (int t = 0; t < n_threads; t++) {
        struct row_args a = {buf, width, rows, grad, last, log_decay, upto, has_grad, b1, b2, step_size, eps_hat,
                             wd, decoupled, catch_up, n_rows * t / n_threads, n_rows * (t + 1) / n_threads};
        args[t] = a;
    }
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&threads[t], 0, row_adamw_span, &args[t]) == 0;
    row_adamw_span(&args[0]);
    for (int t = 1; t < n_threads; t++) {
        if (started[t]) pthread_join(threads[t], 0);
        else row_adamw_span(&args[t]);  /* no thread to be had: this one does that span too */
    }
}

/* The distinct values of idx (n of them, each in [0, height)) in order of first appearance into rows, and
   for each b the position of idx[b] among them into inverse; returns how many. `slot` (height int32s,
   all -1) marks the rows seen and is left all -1 again: one pass, no sort. */
#define UNIQUE_ROWS(NAME, INDEX)                                                                           \
int64_t NAME(const INDEX *restrict idx, int64_t n, int32_t *restrict slot, int64_t *restrict rows,         \
             int64_t *restrict inverse) {                                                                  \
    int64_t count = 0;                                                                                     \
    for (int64_t b = 0; b < n; b++) {                                                                      \
        const int64_t r = (int64_t)idx[b];                                                                 \
        int32_t s = slot[r];                                                                               \
        if (s < 0) {                                                                                       \
            s = (int32_t)count++;                                                                          \
            slot[r] = s;                                                                                   \
            rows[s] = r;                                                                                   \
        }                                                                                                  \
        inverse[b] = s;                                                                                    \
    }                                                                                                      \
    for (int64_t u = 0; u < count; u++) slot[rows[u]] = -1;                                                \
    return count;                                                                                          \
}
UNIQUE_ROWS(unique_rows_i32, int32_t)
UNIQUE_ROWS(unique_rows_i64, int64_t)

/* dst[idx[b], col:col + d] += src[b, :] for b in order (as index_add_ adds them, so sums match it bit for
   bit); dst rows are ld floats apart. One version per index type: the trainer keeps int32 indices. */
#define SCATTER_ROWS(NAME, INDEX)                                                                          \
void NAME(float *restrict dst, int64_t ld, int64_t col, const INDEX *restrict idx, int64_t n,             \
          const float *restrict src, int64_t d) {                                                          \
    for (int64_t b = 0; b < n; b++) {                                                                      \
        float *restrict row = dst + (int64_t)idx[b] * ld + col;                                            \
        const float *restrict s = src + b * d;                                                             \
        for (int64_t j = 0; j < d; j++) row[j] += s[j];                                                    \
    }                                                                                                      \
}
SCATTER_ROWS(scatter_rows_i32, int32_t)
SCATTER_ROWS(scatter_rows_i64, int64_t)

/* One step of torch's fused Adam/AdamW over n elements in its order of float operations, with its fused
   multiply-adds where its build has them (the moment's lerp and the second moment), so the result is
   the same to the bit; reads the gradient from g and zeroes it behind, so the next step's rows are
   added into a clean buffer without a separate fill of the table. */
#ifdef __FMA__
#define FMA(a, b, c) fmaf(a, b, c)
#else
#define FMA(a, b, c) ((a) * (b) + (c))
#endif
/* ADAM_SPAN(first, last, BASE, V): elements [first, last) with the lerp's base BASE and second moment V, as
   one branch-free loop the compiler vectorises (l2 = 0 and shrink = 1 where unused are exact no-ops). */
#define ADAM_SPAN(FIRST, LAST, BASE, V)                                                                    \
    for (int64_t j = (FIRST); j < (LAST); j++) {                                                           \
        const float gj = FMA(w[j], l2, g[j]), wj = w[j] * shrink;                                          \
        const float mj = FMA(coeff, gj - m[j], BASE), vj = V;                                              \
        g[j] = 0.0f;                                                                                       \
        m[j] = mj;                                                                                         \
        v[j] = vj;                                                                                         \
        w[j] = wj + neg_step * mj / (sqrtf(vj) / fbc2 + feps);                                             \
    }
void table_adamw(float *restrict w, float *restrict m, float *restrict v, float *restrict g, int64_t n,
                 double lr, double b1, double b2, double eps, double wd, int decoupled, double step_size,
                 double bc2_sqrt, int64_t vec) {
    const float weight = (float)(1 - b1), fb2 = (float)b2, c2 = (float)(1 - b2);
    const int small = fabsf(weight) < 0.5f;  /* torch's lerp: from m when the weight is small, else from g */
    const float coeff = small ? weight : weight - 1.0f;
    const float neg_step = (float)(-step_size), fbc2 = (float)bc2_sqrt, feps = (float)eps;
    const float shrink = decoupled && wd != 0.0 ? (float)(1 - lr * wd) : 1.0f;
    const float l2 = !decoupled ? (float)wd : 0.0f;
    /* torch's vector loop covers whole vectors of `vec` floats; its scalar tail fuses the second moment
       the other way round */
    const int64_t whole = vec > 0 ? n - n % vec : n;
    if (small) {
        ADAM_SPAN(0, whole, m[j], FMA(c2 * gj, gj, v[j] * fb2))
        ADAM_SPAN(whole, n, m[j], FMA(v[j], fb2, c2 * gj * gj))
    } else {
        ADAM_SPAN(0, whole, gj, FMA(c2 * gj, gj, v[j] * fb2))
        ADAM_SPAN(whole, n, gj, FMA(v[j], fb2, c2 * gj * gj))
    }
}
"""

# -fno-math-errno lets sqrtf be one instruction and the loops vectorise (with errno it is a libm call
# per element: 12 ms a step at ML-25M's shape instead of ~2); no -ffast-math, so the arithmetic stays
# IEEE as torch's. No -march=native: the built file may be shared by machines of one architecture.
CFLAGS = ("-O3", "-std=c99", "-fno-math-errno", "-shared", "-fPIC", "-pthread")


def _cpu_has_fma() -> bool:
    """torch's CPU kernels use fused multiply-adds where the processor has them; table_adamw matches them."""
    try:
        return any(line.startswith("flags") and " fma " in f"{line} " for line in open("/proc/cpuinfo"))
    except OSError:
        return False


# -mfma only in ISO C mode (-std=c99), where the compiler contracts nothing by itself: only the FMA()s
# written above become fused, so row_adamw's arithmetic does not change.
if platform.machine() in ("x86_64", "AMD64") and _cpu_has_fma():
    CFLAGS = (*CFLAGS, "-mfma")

_lib: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable


def _build() -> ctypes.CDLL | bool:
    if os.environ.get("NCF_NO_KERNEL"):
        return False
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        return False
    key = hashlib.sha256(f"{SOURCE}|{CFLAGS}|{platform.machine()}|{compiler}".encode()).hexdigest()[:16]
    for base in _kernel_dirs():
        lib = base / f"rowwise-{key}.so"
        if lib.exists() or _compile(compiler, base, lib):
            try:
                dll = ctypes.CDLL(str(lib))
                break
            except OSError:
                continue
    else:
        return False
    f = dll.row_adamw
    p, i64, dbl, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
    f.argtypes = [p, i64, p, i64, p, p, p, i64, c_int, dbl, dbl, dbl, dbl, dbl, c_int, c_int, c_int]
    f.restype = None
    for name in ("scatter_rows_i32", "scatter_rows_i64"):
        getattr(dll, name).argtypes = [p, i64, i64, p, i64, p, i64]
        getattr(dll, name).restype = None
    dll.table_adamw.argtypes = [p, p, p, p, i64, dbl, dbl, dbl, dbl, dbl, c_int, dbl, dbl, i64]
    dll.table_adamw.restype = None
    for name in ("unique_rows_i32", "unique_rows_i64"):
        getattr(dll, name).argtypes = [p, i64, p, p, p]
        getattr(dll, name).restype = i64
    return dll


def _kernel_dirs() -> list[Path]:
    """Where the built file is kept: $NCF_KERNEL_DIR, else ~/.cache/ncf/kernels, else a folder of this user's
    in the temporary directory (a read-only home). Not under NCF_CACHE_DIR: a build is code, not data, and
    every test (or class session) with its own data cache would otherwise compile it again."""
    named = os.environ.get("NCF_KERNEL_DIR")
    dirs = [Path(named).expanduser()] if named else [Path.home() / ".cache" / "ncf" / "kernels"]
    return [*dirs, Path(tempfile.gettempdir()) / f"ncf-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"]


def _compile(compiler: str, base: Path, lib: Path) -> bool:
    try:
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            src = Path(tmp) / "rowwise.c"
            src.write_text(SOURCE)
            out = Path(tmp) / "rowwise.so"
            subprocess.run([compiler, *CFLAGS, "-o", str(out), str(src), "-lm"],
                           check=True, capture_output=True, timeout=120)
            os.replace(out, lib)  # atomic: a concurrent build finds a whole file or none
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def available() -> bool:
    global _lib
    if _lib is None:
        _lib = _build()
    return bool(_lib)


def row_adamw(buf: torch.Tensor, width: int, rows: torch.Tensor, grad: torch.Tensor | None, last: torch.Tensor,
              log_decay: torch.Tensor, upto: int, *, b1: float, b2: float, step_size: float, eps_hat: float,
              wd: float, decoupled: bool, catch_up: bool, threads: int = 1) -> None:
    """In place on buf's `rows` (int64, unique) and `last`, on up to `threads` threads; the gradient rows
    (U, width) are read and left zero. See SOURCE. CPU float32 contiguous only."""
    assert _lib, "call available() first"
    if grad is not None and not grad.is_contiguous():
        raise ValueError("row_adamw reads (and zeroes) the gradient in place: it must be contiguous")
    _lib.row_adamw(buf.data_ptr(), width, rows.data_ptr(), len(rows), grad.data_ptr() if grad is not None else None,
                   last.data_ptr(), log_decay.data_ptr(), upto, grad is not None, b1, b2, step_size, eps_hat, wd,
                   decoupled, catch_up, threads)


def unique_rows(index: torch.Tensor, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, inverse) as `torch.unique(index, return_inverse=True)` gives them, both int64, but the rows in
    order of first appearance, found in one pass over a mark per table row instead of a sort."""
    assert _lib, "call available() first"
    if index.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"indices must be int32 or int64, not {index.dtype}")
    index = index.contiguous()
    slot = _slots.get(height)
    if slot is None:
        slot = _slots[height] = torch.full((height,), -1, dtype=torch.int32)
    rows = torch.empty(len(index), dtype=torch.long)
    inverse = torch.empty(len(index), dtype=torch.long)
    unique = _lib.unique_rows_i32 if index.dtype == torch.int32 else _lib.unique_rows_i64
    with _slots_lock:  # the marks are shared by every table of this height
        count = unique(index.data_ptr(), len(index), slot.data_ptr(), rows.data_ptr(), inverse.data_ptr())
    return rows[:count], inverse


_slots: dict[int, torch.Tensor] = {}  # one row of marks per table height, all -1 between calls
_slots_lock = threading.Lock()


def scatter_rows(dst: torch.Tensor, index: torch.Tensor, src: torch.Tensor, col: int = 0) -> None:
    """dst[index, col:col + d] += src (B, d), in index order, as `dst[:, col:].index_add_(0, index, src)`."""
    assert _lib, "call available() first"
    src = src.contiguous()
    index = index.contiguous()
    if index.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"indices must be int32 or int64, not {index.dtype}")
    scatter = _lib.scatter_rows_i32 if index.dtype == torch.int32 else _lib.scatter_rows_i64
    scatter(dst.data_ptr(), dst.stride(0), col, index.data_ptr(), len(index), src.data_ptr(), src.shape[1])


def table_adamw(w: torch.Tensor, m: torch.Tensor, v: torch.Tensor, g: torch.Tensor, *, lr: float, b1: float,
                b2: float, eps: float, wd: float, decoupled: bool, step: int) -> None:
    """One Adam(W) step over whole tables (contiguous, same shape), torch's fused step to the bit; zeroes g."""
    assert _lib, "call available() first"
    bias1, bias2 = 1 - b1 ** step, 1 - b2 ** step
    _lib.table_adamw(w.data_ptr(), m.data_ptr(), v.data_ptr(), g.data_ptr(), w.numel(), lr, b1, b2, eps, wd,
                     decoupled, lr / bias1, math.sqrt(bias2), TORCH_VECTOR_FLOATS)


# Floats per vector in torch's fused Adam on x86: its AVX2 kernel (8 floats), which torch dispatches to on
# AVX-512 machines too (tests/test_tablewise.py checks sizes with and without a tail, to the bit).
TORCH_VECTOR_FLOATS = 8


def usable(buf: torch.Tensor) -> bool:
    return buf.device.type == "cpu" and buf.dtype == torch.float32 and buf.is_contiguous() and available()
