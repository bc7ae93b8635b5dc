"""The mean head: which training treatments a new well looks like, and what expression mean that
implies — closed form, fitted once on the training wells (numpy only).

A well is represented by the mean of its cells' normalised morphology, whitened by the noise of
such a mean (``z = m W``, ``W = (S / n + tau^2 I)^-1/2``: ``S`` the pooled within-well cell
covariance, ``n`` the typical number of imaged cells per well, ``tau^2`` the replicate-to-replicate
spread of same-treatment wells beyond that, from the training replicates). In that space:

- a **calibrated posterior** over the training treatments — Gaussian class-conditionals at the
  treatment centroids with the replicate spread as variance, tempered — plus a broad "new
  compound" class: it recognises a treatment when the well lies within the replicate spread of
  one centroid, and spreads its mass when it does not;
- **kernel ridge** (RBF + linear kernel, length-scale and ridge by leave-compound-out
  cross-validation) from ``z`` to the wells' latent means, with its Gaussian-process variance: it
  interpolates for a new compound.

The prediction is a **mixture**: component ``t`` is treatment ``t``'s training latent mean, the
last component the kernel-ridge mean (with predictive noise). Each generated cell picks a
component by the posterior and the diffusion generates its deviation from the component's mean.
Energy distance is a proper score: under uncertainty about the treatment the posterior mixture of
populations scores better than any one blended mean (bench/prototypes, docs/results.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from ..config import MeanHeadConfig


def _inv_sqrt(c: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    w = np.maximum(w, floor * max(float(w.max()), 1e-12))
    return (v / np.sqrt(w)) @ v.T


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T, 0.0)


def pair_deviations(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Deviations of wells from their treatment's centroid, scaled to single-well spread
    (treatments with 2+ wells): ``"n_dev d"``; empty when no treatment has two wells."""
    devs = []
    for t in np.unique(labels):
        rows = z[labels == t]
        if len(rows) >= 2:
            devs.append((rows - rows.mean(axis=0)) * np.sqrt(len(rows) / (len(rows) - 1)))
    return np.vstack(devs) if devs else np.zeros((0, z.shape[1]))


@dataclass
class Wells:
    """Training wells: mean normalised morphology ``m`` ``"G F"``, latent means ``y`` ``"G k"``,
    treatment ``labels`` and ``compounds`` (held out together in cross-validation), cells per well,
    and the pooled within-well covariance of the morphology cells ``"F F"``."""

    m: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    compounds: np.ndarray
    n_cells: np.ndarray
    cell_cov: np.ndarray
    control: str | None = None

    def not_control(self) -> np.ndarray:
        return (
            self.labels != self.control if self.control is not None else np.ones(len(self.m), bool)
        )


def fit_space(w: Wells) -> tuple[np.ndarray, float]:
    """``(W, tau2)``: the whitening of a well mean by its sampling noise plus an isotropic
    replicate term (only its size is learnt from the training pairs: two training replicates
    span one contrast, and a new replicate's offset points elsewhere)."""
    f, n = w.m.shape[1], float(np.median(w.n_cells))
    samp = w.cell_cov / max(n, 1.0)
    dev = pair_deviations(w.m[w.not_control()], w.labels[w.not_control()])
    trace = float(np.trace(samp))
    if not len(dev) and trace <= 0:  # one profile per treatment: standardised features as is
        return np.eye(f), 0.0
    tau2 = max(float((dev**2).sum(1).mean()) - trace, 0.05 * trace) / f if len(dev) else 0.0
    return _inv_sqrt(samp + tau2 * np.eye(f)), tau2


@dataclass
class KernelRidge:
    """``y = ybar + k(z, Z) A`` with the RBF + linear kernel, ``A = (K + alpha I)^-1 (Y - ybar)``;
    as a GP it gives a predictive variance per output (signal scale fitted per output)."""

    ls: float = 0.5
    alpha: float = 0.01
    Z: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    A: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    ybar: np.ndarray = field(default_factory=lambda: np.zeros(0))
    Kinv: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    med: float = 1.0
    lin_scale: float = 1.0

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        rbf = np.exp(-_sqdist(a, b) / (2 * (self.ls * self.med) ** 2))
        return rbf + a @ b.T / self.lin_scale

    def fit(self, Z: np.ndarray, Y: np.ndarray) -> KernelRidge:
        d = np.sqrt(_sqdist(Z, Z))[np.triu_indices(len(Z), 1)]
        self.Z, self.med = Z, max(float(np.median(d)) if len(d) else 1.0, 1e-12)
        self.lin_scale = float((Z**2).sum(1).mean()) or 1.0
        self.ybar = Y.mean(axis=0)
        self.Kinv = np.linalg.inv(self.kernel(Z, Z) + self.alpha * np.eye(len(Z)))
        self.A = self.Kinv @ (Y - self.ybar)
        self.scale = ((Y - self.ybar) * self.A).sum(axis=0) / len(Z)
        return self

    def weights(self, Z: np.ndarray) -> np.ndarray:
        """``"n G"`` weights of the training targets: the prediction of any target ``Y`` is
        ``ybar + weights @ (Y - ybar)`` (linear in the targets)."""
        return self.kernel(Z, self.Z) @ self.Kinv

    def variance(self, Z: np.ndarray) -> np.ndarray:
        """``"n"`` GP posterior variance of a unit-scale output at ``Z``: 0 on a training well,
        1 + |z|^2 / lin_scale far from all of them."""
        k = self.kernel(Z, self.Z)
        kss = 1.0 + (Z**2).sum(1) / self.lin_scale
        return np.maximum(kss - np.einsum("ij,jk,ik->i", k, self.Kinv, k), 0.0)

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``"n k"`` and predictive variance ``"n k"`` of the latent function."""
        mean = self.ybar + self.kernel(Z, self.Z) @ self.A
        return mean, self.variance(Z)[:, None] * self.scale[None, :]


def select_kernel_ridge(Z: np.ndarray, Y: np.ndarray, compounds: np.ndarray,
                        config: MeanHeadConfig, control: str | None) -> KernelRidge:  # fmt: skip
    """Kernel ridge with the length-scale and ridge of lowest leave-compound-out squared error
    (each compound's wells predicted from the others'): cross-validating over held-out
    *compounds* tunes it for the case it is there for, a new compound."""
    folds = [compounds == c for c in np.unique(compounds) if c != control]
    if len(folds) < 3:
        return KernelRidge(config.length_scales[0], config.alphas[0]).fit(Z, Y)
    best, best_err = None, np.inf
    for ls in config.length_scales:
        for alpha in config.alphas:
            err = sum(float(((KernelRidge(ls, alpha).fit(Z[~te], Y[~te]).predict(Z[te])[0]
                              - Y[te]) ** 2).sum()) for te in folds)  # fmt: skip
            if err < best_err:
                best, best_err = (ls, alpha), err
    return KernelRidge(*best).fit(Z, Y)


@dataclass
class TreatmentPosterior:
    """Gaussian class-conditionals ``z ~ N(c_t, s2 (1 + 1/R) I)`` at the treatment centroids
    (``s2`` the replicate spread of training wells, ``R`` wells per treatment), a broad "new"
    class ``N(mean c, var(c) + s2)``; log-likelihoods divided by ``temperature``, prior
    ``1 - p_new`` spread over the treatments and ``p_new`` for "new"."""

    classes: np.ndarray
    centroids: np.ndarray
    s2: float
    n_wells: float
    temperature: float = 8.0
    p_new: float = 0.05

    @classmethod
    def fit(cls, z: np.ndarray, labels: np.ndarray, control: str | None, temperature: float,
            p_new: float) -> TreatmentPosterior:  # fmt: skip
        classes = np.unique(labels)
        centroids = np.vstack([z[labels == t].mean(axis=0) for t in classes])
        keep = labels != control if control is not None else np.ones(len(labels), bool)
        dev = pair_deviations(z[keep], labels[keep])
        s2 = float((dev**2).mean()) if len(dev) else 1.0
        n_wells = float(np.median([(labels == t).sum() for t in classes]))
        return cls(classes, centroids, s2, n_wells, temperature, p_new)

    def proba(self, z: np.ndarray) -> np.ndarray:
        """``"n C+1"`` posterior over the treatments and (last) "new"."""
        k, var = z.shape[1], self.s2 * (1 + 1 / self.n_wells)
        d2 = _sqdist(z, self.centroids)
        ll = -0.5 * d2 / var - 0.5 * k * np.log(2 * np.pi * var)
        new_mean, new_var = self.centroids.mean(axis=0), self.centroids.var(axis=0) + self.s2
        lnew = -0.5 * (((z - new_mean) ** 2) / new_var).sum(1) - 0.5 * np.log(
            2 * np.pi * new_var).sum()  # fmt: skip
        prior = np.r_[np.full(len(self.classes), (1 - self.p_new) / len(self.classes)),
                      self.p_new]  # fmt: skip
        lp = np.column_stack([ll, lnew]) / self.temperature + np.log(np.maximum(prior, 1e-300))
        return np.exp(lp - logsumexp(lp, axis=1, keepdims=True))


@dataclass
class MeanHead:
    """The fitted mean head (see the module docstring). ``kind``: ``mixture`` (components by
    the posterior), ``mean`` (one component: the posterior-weighted mean), ``krr`` (kernel ridge
    only)."""

    kind: str
    W: np.ndarray  # "F F'" whitening of well means
    posterior: TreatmentPosterior | None  # None: no replicate pairs, nothing to recognise
    krr: KernelRidge
    class_means: np.ndarray  # "C k" training latent mean of every treatment
    class_groups: list[list[int]]  # the registered group indices of every treatment's wells
    train_groups: list[int]  # the registered group index of every training well (krr's order)
    noise_scale: float = 1.0
    tau2: float = 0.0

    @classmethod
    def fit(cls, wells: Wells, config: MeanHeadConfig, groups: np.ndarray) -> MeanHead:
        """Fit on training ``wells`` (``groups``: their registered group indices)."""
        W, tau2 = fit_space(wells)
        z = wells.m @ W
        has_pairs = len(pair_deviations(z[wells.not_control()], wells.labels[wells.not_control()]))
        post = (TreatmentPosterior.fit(z, wells.labels, wells.control, config.temperature,
                                       config.p_new) if has_pairs else None)  # fmt: skip
        classes = post.classes if post is not None else np.unique(wells.labels)
        krr = select_kernel_ridge(z, wells.y, wells.compounds, config, wells.control)
        members = [np.flatnonzero(wells.labels == t) for t in classes]
        return cls(config.kind, W, post, krr, np.vstack([wells.y[r].mean(0) for r in members]),
                   [groups[r].tolist() for r in members], groups.tolist(), config.noise_scale,
                   tau2)  # fmt: skip

    @property
    def n_classes(self) -> int:
        return len(self.class_groups)

    def represent(self, m: np.ndarray) -> np.ndarray:
        """The whitened representation ``"n F'"`` of well means ``m`` ``"n F"``."""
        return m @ self.W

    def weights(self, z: np.ndarray) -> np.ndarray:
        """``"n C+1"`` weights of the training treatments and (last) of kernel ridge."""
        w = np.zeros((len(z), self.n_classes + 1))
        if self.posterior is None or self.kind == "krr":
            w[:, -1] = 1.0
        else:
            w[:] = self.posterior.proba(z)
        return w

    def components(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(weights "n C+1", means "n C+1 k", new_var "n k")``: the mixture of each well; the
        last component is kernel ridge's mean, its predictive variance ``new_var`` (times
        ``noise_scale``) is the per-cell noise of that component."""
        w = self.weights(z)
        km, kv = self.krr.predict(z)
        seen = np.broadcast_to(self.class_means, (len(z), *self.class_means.shape))
        means = np.concatenate([seen, km[:, None, :]], axis=1)
        if self.kind == "mean":  # one component: the weighted mean
            blended = np.einsum("nc,nck->nk", w, means)
            means = np.concatenate([np.zeros_like(means[:, :-1]), blended[:, None]], axis=1)
            w = np.zeros_like(w)
            w[:, -1] = 1.0
            kv = np.zeros_like(kv)
        return w, means, self.noise_scale * kv

    def predict(self, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The mixture's mean ``"n d"`` of any per-training-group target ``targets`` ``"G d"``
        (e.g. pseudo-bulks), by the same weights and kernel."""
        return self.predict_spread(z, targets)[0]

    def component_targets(self, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``"n C+1 d"``: the mean of any per-training-group target ``targets`` ``"G d"`` under
        each component of the mixture — every training treatment's own mean, and (last)
        kernel ridge's prediction by the same weights as the latent's (linear in the targets)."""
        per_class = np.vstack([targets[g].mean(axis=0) for g in self.class_groups])
        train = targets[self.train_groups]
        kr = train.mean(axis=0) + self.krr.weights(z) @ (train - train.mean(axis=0))
        return np.concatenate([np.broadcast_to(per_class, (len(z), *per_class.shape)),
                               kr[:, None]], axis=1)  # fmt: skip

    def anchors(self, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """:meth:`component_targets` in the layout of :meth:`components` (``kind="mean"``: one
        component, the weighted mean)."""
        comps = self.component_targets(z, targets)
        if self.kind == "mean":
            blended = np.einsum("nc,ncd->nd", self.weights(z), comps)
            comps = np.concatenate([np.zeros_like(comps[:, :-1]), blended[:, None]], axis=1)
        return comps

    def predict_spread(self, z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance ``"n d"`` of the mixture in the space of ``targets`` ``"G d"``: the
        spread of its components' means around their weighted mean, plus kernel ridge's
        predictive variance on its share — small for a recognised treatment, large where the
        head must interpolate or hesitates between treatments (novelty-aware)."""
        w, comps = self.weights(z), self.component_targets(z, targets)
        train = targets[self.train_groups]
        centred = train - train.mean(axis=0)
        scale = (centred * (self.krr.Kinv @ centred)).sum(axis=0) / len(train)
        mean = np.einsum("nc,ncd->nd", w, comps)
        var = np.einsum("nc,ncd->nd", w, (comps - mean[:, None]) ** 2)
        return mean, var + w[:, -1:] * self.krr.variance(z)[:, None] * scale[None]

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays (safetensors) and JSON-able settings that :meth:`from_state` reads back."""
        arrays = {"W": self.W, "class_means": self.class_means, "krr.Z": self.krr.Z,
                  "krr.A": self.krr.A, "krr.ybar": self.krr.ybar, "krr.Kinv": self.krr.Kinv,
                  "krr.scale": self.krr.scale}  # fmt: skip
        doc = {"kind": self.kind, "class_groups": self.class_groups, "tau2": self.tau2,
               "noise_scale": self.noise_scale, "train_groups": self.train_groups,
               "krr": {"ls": self.krr.ls, "alpha": self.krr.alpha, "med": self.krr.med,
                       "lin_scale": self.krr.lin_scale}}  # fmt: skip
        if self.posterior is not None:
            p = self.posterior
            arrays["posterior.centroids"] = p.centroids
            doc["posterior"] = {"classes": p.classes.tolist(), "s2": p.s2, "n_wells": p.n_wells,
                                "temperature": p.temperature, "p_new": p.p_new}  # fmt: skip
        return {k: np.ascontiguousarray(v, np.float64) for k, v in arrays.items()}, doc

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], doc: dict) -> MeanHead:
        krr = KernelRidge(doc["krr"]["ls"], doc["krr"]["alpha"], arrays["krr.Z"], arrays["krr.A"],
                          arrays["krr.ybar"], arrays["krr.Kinv"], arrays["krr.scale"],
                          doc["krr"]["med"], doc["krr"]["lin_scale"])  # fmt: skip
        post = None
        if "posterior" in doc:
            p = doc["posterior"]
            post = TreatmentPosterior(
                np.asarray(p["classes"]),
                arrays["posterior.centroids"],
                p["s2"],
                p["n_wells"],
                p["temperature"],
                p["p_new"],
            )
        return cls(doc["kind"], arrays["W"], post, krr, arrays["class_means"],
                   doc["class_groups"], doc["train_groups"], doc["noise_scale"],
                   doc["tau2"])  # fmt: skip
