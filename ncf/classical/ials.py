"""iALS (Hu, Koren & Volinsky 2008), fitted by the `implicit` library."""

from __future__ import annotations

import numpy as np
import torch

from ncf import registry
from ncf.classical.base import FactorModel, is_set


class IALS(FactorModel):
    """Hu, Koren & Volinsky's implicit ALS, fitted by the `implicit` library (its GPU build where
    there is one); the factors are copied into tensors, so scoring and loading need no `implicit`."""

    user_table = ("user factors", ", solved by least squares")
    item_table = ("item factors", ", solved by least squares")

    @property
    def fit_steps(self) -> int:
        return registry.setting(self.config, "iterations")

    def fit(self, split, tcfg, *, progress=None, stop=None) -> bool:
        import implicit.gpu
        from implicit.als import AlternatingLeastSquares

        cfg = self.config
        x = self.train_matrix(split)
        use_gpu = bool(implicit.gpu.HAS_CUDA) and self.item_emb.weight.device.type == "cuda"
        # One iteration per call: `fit` continues from the factors it holds, so each sweep can be
        # reported and a stop honoured between sweeps.
        from threadpoolctl import threadpool_limits

        kwargs = {} if use_gpu else {"num_threads": torch.get_num_threads()}
        blas_one_thread = threadpool_limits(1, "blas")  # implicit's advice: its own threads, BLAS on one
        try:
            als = AlternatingLeastSquares(factors=cfg.resolved_factors, regularization=registry.setting(cfg, "reg"),
                                          alpha=registry.setting(cfg, "confidence"), iterations=1,
                                          random_state=tcfg.seed, use_gpu=use_gpu, **kwargs)
            stopped = False
            for it in range(1, self.fit_steps + 1):
                als.fit(x, show_progress=False)
                if progress is not None:
                    progress(it, {})
                if is_set(stop) and it < self.fit_steps:
                    stopped = True
                    break
        finally:
            blas_one_thread.restore_original_limits()
        if use_gpu:
            als = als.to_cpu()
        with torch.no_grad():
            self.user_emb.weight.copy_(torch.as_tensor(np.asarray(als.user_factors)))
            self.item_emb.weight.copy_(torch.as_tensor(np.asarray(als.item_factors)))
        return stopped

    @torch.no_grad()
    def score_new_user(self, items):
        """The user's least-squares factors given the fixed item factors Y (implicit's own update):
        (YᵀY + λI + (α - 1) Y_Iᵀ Y_I) p = α Y_Iᵀ 1, in implicit 0.7's convention c = α for an observed pair."""
        cfg = self.config
        y = self.item_emb.weight.double()
        alpha, reg = registry.setting(cfg, "confidence"), registry.setting(cfg, "reg")
        y_i = y[items]
        a = y.T @ y + reg * torch.eye(y.shape[1], dtype=y.dtype) + (alpha - 1) * y_i.T @ y_i
        p = torch.linalg.solve(a, alpha * y_i.sum(0))
        return (y @ p).float()
