"""Learned fusion and calibrated confidence, both monotone in the evidence by construction.

`Ranker` fuses the dense and lexical evidence of a candidate into one score (a conditional
logit over each query's candidates); `Calibrator` turns features into the probability that a
candidate is the right entry. All weights are >= 0 on features where larger means better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from knowledge_index.fusion import COLUMN, EVIDENCE, FEATURES, MODE_FEATURES, Mode

L2_PENALTY = 1e-5
MIN_RANKER_QUERIES = 20

_DEFAULT_RANKER = {"cosine": 6.0, "whitened_centroid": 4.0, "bm25_relative": 2.0}
_DEFAULT_WEIGHTS: dict[Mode, tuple[dict[str, float], float]] = {
    "hybrid": ({"cosine": 8.0, "cosine_margin": 6.0, "bm25": 2.0, "fused_margin": 0.5}, -6.5),
    "dense": ({"cosine": 10.0, "cosine_margin": 6.0}, -7.0),
    "lexical": ({"bm25": 6.0, "bm25_margin": 3.0, "coverage": 1.0}, -5.0),
}


def _sigmoid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * values))


CalibrationSource = Literal["default", "kb", "transfer"]
"""Where a confidence model's weights come from: hand-set, fitted on the KB's own
leave-one-out queries, or fitted once on public data and shipped (`knowledge_index.transfer`)."""


@dataclass(frozen=True)
class Calibrator:
    """P(candidate is the right entry) = sigmoid(w . features + bias), with every w >= 0.

    Non-negative weights on features oriented "larger is better" make the confidence
    monotone: a hit never loses confidence when its cosine or BM25 evidence grows.

    Attributes:
        mode: The ranking mode it serves.
        weights: One weight per feature of `names`.
        bias: The intercept.
        fitted_on: Number of training rows (0 for the hand-set default).
        features: The feature names it reads, in weight order; empty means
            `MODE_FEATURES[mode]` (the leave-one-out models).
        source: `default`, `kb` (leave-one-out on the KB) or `transfer` (shipped).
    """

    mode: Mode
    weights: tuple[float, ...]
    bias: float
    fitted_on: int = 0
    features: tuple[str, ...] = ()
    source: CalibrationSource = "kb"

    def __post_init__(self) -> None:
        unknown = [name for name in self.features if name not in COLUMN]
        if unknown:
            raise ValueError(f"unknown calibration features {unknown}")
        if len(self.weights) != len(self.names):
            raise ValueError(f"{len(self.weights)} weights for {len(self.names)} features")

    @property
    def names(self) -> tuple[str, ...]:
        """The feature names it reads, in weight order."""
        return self.features or tuple(FEATURES[c] for c in MODE_FEATURES[self.mode])

    @property
    def columns(self) -> tuple[int, ...]:
        """Columns of the full feature matrix this model reads."""
        return tuple(COLUMN[name] for name in self.names)

    def logits(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """The linear fusion score of each row of a full feature matrix."""
        logits: NDArray[np.float64] = features[:, self.columns] @ np.asarray(self.weights)
        return logits + self.bias

    def confidence(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """The calibrated confidence in [0, 1] of each row of a full feature matrix."""
        return _sigmoid(self.logits(features))

    @classmethod
    def default(cls, mode: Mode) -> Calibrator:
        """Hand-set weights, used when the KB is too small to fit a model."""
        named, bias = _DEFAULT_WEIGHTS[mode]
        weights = tuple(named.get(FEATURES[c], 0.0) for c in MODE_FEATURES[mode])
        return cls(mode, weights, bias, source="default")

    @classmethod
    def fit(
        cls,
        mode: Mode,
        features: NDArray[np.float64],
        labels: NDArray[np.bool_],
        *,
        names: Sequence[str] = (),
        sample_weight: NDArray[np.float64] | None = None,
        l2: float = L2_PENALTY,
        source: CalibrationSource = "kb",
    ) -> Calibrator:
        """Fits the weights (bounded at 0) and bias by L2-penalised maximum likelihood.

        Args:
            mode: The mode, which selects the feature columns unless `names` is given.
            features: Full feature matrix of training candidates.
            labels: True where the candidate was the right entry.
            names: The features to use (default `MODE_FEATURES[mode]`).
            sample_weight: A weight per row (default: all equal).
            l2: Penalty on the squared weights.
            source: Recorded with the model.

        Returns:
            The fitted model, or the default when the labels are all one class.
        """
        from scipy.optimize import minimize

        if len(labels) == 0 or labels.all() or not labels.any():
            return cls.default(mode)
        chosen = tuple(names) or tuple(FEATURES[c] for c in MODE_FEATURES[mode])
        x = features[:, [COLUMN[name] for name in chosen]]
        y = labels.astype(np.float64)
        weight = np.ones(len(y)) if sample_weight is None else sample_weight.astype(np.float64)
        weight = weight / weight.sum()
        n_weights = x.shape[1]

        def loss(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            z = x @ params[:n_weights] + params[n_weights]
            # log(1 + e^z) - y z, computed stably
            value = float(weight @ (np.logaddexp(0.0, z) - y * z))
            residual = weight * (_sigmoid(z) - y)
            gradient = np.append(x.T @ residual, residual.sum())
            value += l2 * float(params[:n_weights] @ params[:n_weights])
            gradient[:n_weights] += 2 * l2 * params[:n_weights]
            return value, gradient

        start = np.append(np.ones(n_weights), -1.0)
        bounds = [(0.0, None)] * n_weights + [(None, None)]
        result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
        params = result.x
        return cls(
            mode,
            tuple(float(w) for w in params[:n_weights]),
            float(params[-1]),
            len(y),
            tuple(names),
            source,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with weights named by feature (in weight order)."""
        return {
            "mode": self.mode,
            "weights": dict(zip(self.names, self.weights, strict=True)),
            "bias": self.bias,
            "fitted_on": self.fitted_on,
            "source": self.source,
            "custom_features": bool(self.features),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        """Rebuilds a model written by `to_dict`.

        Raises:
            ValueError: It names features this version does not compute.
            KeyError: A field is missing.
        """
        mode: Mode = data["mode"]
        if mode not in MODE_FEATURES:
            raise ValueError(f"unknown mode {mode!r}")
        named: Mapping[str, Any] = data["weights"]
        custom = bool(data.get("custom_features", False))
        names = tuple(named) if custom else tuple(FEATURES[c] for c in MODE_FEATURES[mode])
        source = data.get("source", "kb")
        if source not in ("default", "kb", "transfer"):
            raise ValueError(f"unknown calibration source {source!r}")
        return cls(
            mode,
            tuple(float(named[name]) for name in names),
            float(data["bias"]),
            int(data.get("fitted_on", 0)),
            names if custom else (),
            source,
        )


def fit_calibrators(
    rows: Sequence[tuple[Mode, NDArray[np.float64], NDArray[np.bool_]]],
) -> dict[Mode, Calibrator]:
    """Fits one calibrator per mode from (mode, features, labels) training blocks."""
    by_mode: dict[Mode, list[tuple[NDArray[np.float64], NDArray[np.bool_]]]] = {}
    for mode, features, labels in rows:
        by_mode.setdefault(mode, []).append((features, labels))
    calibrators = {}
    for mode, blocks in by_mode.items():
        features = np.vstack([f for f, _ in blocks])
        labels = np.concatenate([y for _, y in blocks])
        calibrators[mode] = Calibrator.fit(mode, features, labels)
    return calibrators


@dataclass(frozen=True)
class Ranker:
    """Score fusion `w . evidence` with every w >= 0, fitted as a conditional logit.

    Attributes:
        weights: One weight per `EVIDENCE` feature.
        fitted_on: Number of training queries (0 for the hand-set default).
    """

    weights: tuple[float, ...]
    fitted_on: int = 0

    def scores(self, evidence: NDArray[np.float64]) -> NDArray[np.float64]:
        """The fused score of each row of an evidence matrix."""
        scores: NDArray[np.float64] = evidence[:, : len(EVIDENCE)] @ np.asarray(self.weights)
        return scores

    @classmethod
    def default(cls) -> Ranker:
        """Hand-set weights, used when the KB is too small to fit a ranker."""
        return cls(tuple(_DEFAULT_RANKER.get(name, 0.0) for name in EVIDENCE))

    @classmethod
    def fit(cls, groups: Sequence[tuple[NDArray[np.float64], int]]) -> Ranker:
        """Maximises the softmax probability of the right candidate within each query.

        Args:
            groups: Per answerable query, its evidence matrix and the right candidate's row.

        Returns:
            The fitted ranker, or the default when there are too few queries.
        """
        from scipy.optimize import minimize

        if len(groups) < MIN_RANKER_QUERIES:
            return cls.default()
        width = max(len(evidence) for evidence, _ in groups)
        n_features = len(EVIDENCE)
        x = np.zeros((len(groups), width, n_features))
        mask = np.zeros((len(groups), width), dtype=bool)
        for number, (evidence, _) in enumerate(groups):
            x[number, : len(evidence)] = evidence[:, :n_features]
            mask[number, : len(evidence)] = True
        right = np.array([row for _, row in groups])
        x_right = x[np.arange(len(groups)), right]

        def loss(weights: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            z = np.where(mask, x @ weights, -np.inf)
            z_max = z.max(axis=1, keepdims=True)
            p = np.exp(z - z_max)
            total = p.sum(axis=1, keepdims=True)
            p /= total
            log_z = np.log(total[:, 0]) + z_max[:, 0]
            value = float(np.mean(log_z - x_right @ weights))
            gradient = (np.einsum("gc,gcf->f", p, x) - x_right.sum(axis=0)) / len(groups)
            value += L2_PENALTY * float(weights @ weights)
            return value, gradient + 2 * L2_PENALTY * weights

        result = minimize(
            loss,
            np.ones(n_features),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * n_features,
        )
        return cls(tuple(float(w) for w in result.x), len(groups))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with weights named by feature."""
        return {
            "weights": dict(zip(EVIDENCE, self.weights, strict=True)),
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ranker:
        """Rebuilds a ranker written by `to_dict`."""
        return cls(
            tuple(float(data["weights"][name]) for name in EVIDENCE), int(data.get("fitted_on", 0))
        )
