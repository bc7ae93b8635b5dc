"""Draw cells: physical morphology parameters -> 5-channel Cell Painting crops and whole fields.

Everything is vectorised over a batch of cells (arrays ``(n, size, size)``); textures are white
noise filtered in Fourier space, so there is no per-pixel Python loop.
"""

from __future__ import annotations

import numpy as np

from .model import MORPHOLOGY_PARAMS

CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
LABELS = {"background": 0, "cytoplasm": 1, "nucleus": 2}
INTENSITY_SCALE = 180.0  # stored uint8 value of unit signal
READ_NOISE = 0.004
_IDX = {name: i for i, name in enumerate(MORPHOLOGY_PARAMS)}


def _param(params: np.ndarray, name: str) -> np.ndarray:
    """One parameter as ``(n, 1, 1)`` for broadcasting against images."""
    return params[:, _IDX[name]][:, None, None]


def _soft(rho: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Soft inside-mask of a normalised radius (about one pixel of edge)."""
    return 1.0 / (1.0 + np.exp(-np.clip((1.0 - rho) * radius * 1.5, -30, 30)))


def _shape(grid, center, angle, axes, irregularity, rng) -> np.ndarray:
    """Normalised radius ``rho`` ``(n, S, S)`` of a rotated ellipse with a wavy outline
    (harmonics 2-5 of fixed weights and random phases); ``rho < 1`` is inside."""
    yy, xx = grid
    dx, dy = xx - center[0], yy - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = (dx * cos + dy * sin) / axes[0]
    v = (-dx * sin + dy * cos) / axes[1]
    theta = np.arctan2(v, u)
    n = len(angle)
    weights = np.array([0.4, 0.3, 0.2, 0.1], np.float32)[None, :, None, None]
    phases = rng.uniform(0, 2 * np.pi, (n, 4)).astype(np.float32)[:, :, None, None]
    k = np.arange(2, 6, dtype=np.float32)[None, :, None, None]
    wave = (weights * np.cos(k * theta[:, None] + phases)).sum(axis=1)
    return np.sqrt(u**2 + v**2) / (1.0 + irregularity * wave)


def smooth_noise(
    rng: np.random.Generator,
    n: int,
    size: int,
    sigma: np.ndarray,
    stretch: float = 1.0,
    angle: np.ndarray | None = None,
) -> np.ndarray:
    """Zero-mean unit-variance Gaussian random fields ``(n, size, size)``.

    ``sigma`` ``(n,)`` is the correlation length in pixels; ``stretch`` > 1 elongates it along
    ``angle`` (fibres).
    """
    white = rng.standard_normal((n, size, size), dtype=np.float32)
    ky = (2 * np.pi * np.fft.fftfreq(size)).astype(np.float32)[None, :, None]
    kx = (2 * np.pi * np.fft.rfftfreq(size)).astype(np.float32)[None, None, :]
    s = np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1)
    if angle is None:
        k2 = s**2 * (kx**2 + ky**2)
    else:
        a = np.asarray(angle, dtype=np.float32).reshape(-1, 1, 1)
        ku, kv = kx * np.cos(a) + ky * np.sin(a), -kx * np.sin(a) + ky * np.cos(a)
        k2 = (s * stretch) ** 2 * ku**2 + s**2 * kv**2
    field = np.fft.irfft2(np.fft.rfft2(white) * np.exp(-0.5 * k2), s=(size, size))
    field -= field.mean(axis=(1, 2), keepdims=True)
    return field / (field.std(axis=(1, 2), keepdims=True) + 1e-6)


def _geometry(params: np.ndarray, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Axes, centres and orientations of nucleus and cell ``(n, 1, 1)`` each, in pixels."""
    n, scale = len(params), size / 64.0
    a_n = _param(params, "nuc_radius") * scale
    b_n = a_n * _param(params, "nuc_aspect")
    a_c = np.minimum(a_n * _param(params, "cell_scale"), 0.44 * size)
    b_c = np.maximum(a_c * _param(params, "cell_aspect"), 1.3 * b_n)
    a_n = np.minimum(a_n, 0.8 * a_c)
    angle = rng.uniform(0, np.pi, n).astype(np.float32)[:, None, None]
    c = (size - 1) / 2 + rng.uniform(-1.5, 1.5, (2, n, 1, 1)).astype(np.float32) * scale
    phi = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    off = _param(params, "nuc_offset") * (b_c - b_n) * 0.8
    cn = (c[0] + off * np.cos(phi), c[1] + off * np.sin(phi))
    return dict(a_n=a_n, b_n=b_n, a_c=a_c, b_c=b_c, angle=angle, c=c, cn=cn)


def _compartments(params, size, rng):
    """Soft nucleus and cell masks, the cell's normalised radius and the hard label image."""
    g = _geometry(params, size, rng)
    grid = np.mgrid[0:size, 0:size].astype(np.float32)
    ang_n = g["angle"] + rng.normal(0, 0.3, g["angle"].shape).astype(np.float32)
    rho_n = _shape(
        grid, g["cn"], ang_n, (g["a_n"], g["b_n"]), _param(params, "nuc_irregularity"), rng
    )
    rho_c = _shape(
        grid, g["c"], g["angle"], (g["a_c"], g["b_c"]), _param(params, "cell_irregularity"), rng
    )
    nuc = _soft(rho_n, g["b_n"])
    cell = np.maximum(_soft(rho_c, g["b_c"]), nuc)
    labels = ((rho_c < 1) | (rho_n < 1)).astype(np.uint8) + (rho_n < 1)
    return nuc, cell, rho_c, labels, g


def _channels(params, nuc, cell, rho_c, g, rng) -> np.ndarray:
    """The five stains ``(n, 5, S, S)`` as functions of compartments and textures."""
    n, size = nuc.shape[0], nuc.shape[-1]
    p = lambda name: _param(params, name)  # noqa: E731
    cyto = cell * (1 - nuc)
    t_dna = smooth_noise(rng, n, size, p("dna_grain").ravel())
    t_spot = smooth_noise(rng, n, size, np.full(n, 1.5))
    t_rna = smooth_noise(rng, n, size, np.full(n, 2.0))
    t_er = smooth_noise(rng, n, size, np.full(n, 1.0))
    t_fib = smooth_noise(rng, n, size, np.full(n, 0.8), stretch=6.0, angle=g["angle"].ravel())
    t_mito = smooth_noise(rng, n, size, p("mito_grain").ravel())
    nucleoli = nuc / (1.0 + np.exp(-(t_spot - 1.3) * 4))
    # the same nucleolar fraction of the nucleus in every cell: only the spot pattern is random
    frac = nucleoli.sum(axis=(1, 2), keepdims=True) / (nuc.sum(axis=(1, 2), keepdims=True) + 1e-6)
    nucleoli = np.clip(nucleoli * (0.12 / (frac + 1e-3)), 0, 1)
    dna = p("dna_intensity") * nuc * np.clip(1 + p("dna_texture") * t_dna, 0.1, None)
    dna *= 1 - 0.5 * nucleoli
    rna = (
        0.3 * nuc
        + 0.6 * cyto * np.exp(-rho_c) * (1 + 0.25 * t_rna)
        + 1.5 * p("nucleoli") * nucleoli
    )
    er = 2.0 * cell * (1 - 0.7 * nuc) * np.exp(-p("er_spread") * rho_c)
    er *= np.clip(1 + p("er_texture") * t_er, 0, None)
    ring = cell * np.exp(-(((1 - rho_c) * g["b_c"] / 1.5) ** 2))
    fibers = 0.8 * cell * np.clip(0.6 + 0.8 * t_fib, 0, None)
    agp = (1 - p("agp_fibers")) * ring + p("agp_fibers") * fibers
    puncta = np.clip(t_mito, 0, None) ** 1.3
    mito = (
        cyto
        * np.exp(-0.6 * rho_c)
        * ((1 - p("mito_puncta")) * 0.6 + p("mito_puncta") * 1.8 * puncta)
    )
    stains = [
        dna,
        p("er_intensity") * er,
        p("rna_intensity") * np.clip(rna, 0, None),
        p("agp_intensity") * agp,
        p("mito_intensity") * mito,
    ]
    return np.stack(stains, axis=1).astype(np.float32)


def render_cells(
    params: np.ndarray, rng: np.random.Generator, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free stain images of single cells centred in square crops.

    Parameters
    ----------
    params
        ``(n, P)`` physical parameters in :data:`~.model.MORPHOLOGY_PARAMS` order.
    rng
        Nuisance randomness (orientation, outline, textures).
    size
        Crop side in pixels.

    Returns
    -------
    signal
        ``(n, 5, size, size)`` float32 stain intensities (about 0-1.5) in :data:`CHANNELS` order.
    labels
        ``(n, size, size)`` uint8: 0 background, 1 cytoplasm, 2 nucleus.
    """
    params = np.asarray(params, dtype=np.float32)
    nuc, cell, rho_c, labels, g = _compartments(params, size, rng)
    return _channels(params, nuc, cell, rho_c, g, rng), labels


def blur(images: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Gaussian optical blur of ``(n, c, H, W)`` images, ``sigma`` ``(n,)`` pixels (Fourier)."""
    h, w = images.shape[-2:]
    ky = (2 * np.pi * np.fft.fftfreq(h)).astype(np.float32)[None, None, :, None]
    kx = (2 * np.pi * np.fft.rfftfreq(w)).astype(np.float32)[None, None, None, :]
    s = np.asarray(sigma, dtype=np.float32).reshape(-1, 1, 1, 1)
    kernel = np.exp(-0.5 * s**2 * (kx**2 + ky**2)).astype(np.float32)
    return np.fft.irfft2(np.fft.rfft2(images) * kernel, s=(h, w)).astype(np.float32)


def acquire(
    signal: np.ndarray,
    gain: np.ndarray,
    background: np.ndarray,
    photons: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Camera model: per-channel gain and background, shot and read noise, 8-bit quantisation.

    Parameters
    ----------
    signal
        ``(n, 5, H, W)`` blurred stain intensities.
    gain, background
        ``(n, 5)`` per-image channel gain and background (replicate effects).
    photons
        Photons at unit signal (sets the shot noise).

    Returns
    -------
    ``(n, 5, H, W)`` uint8 images; divide by 255 for intensities in [0, 1].
    """
    level = (gain[:, :, None, None] * signal + background[:, :, None, None]).astype(np.float32)
    # shot noise (Gaussian limit of Poisson: a few hundred photons) plus read noise
    sd = np.sqrt(np.clip(level, 0, None) / photons + READ_NOISE**2)
    noisy = level + sd * rng.standard_normal(level.shape, dtype=np.float32)
    return np.clip(np.rint(noisy * INTENSITY_SCALE), 0, 255).astype(np.uint8)


def compose_field(
    signal: np.ndarray, labels: np.ndarray, corners: np.ndarray, field_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste single-cell renders into one field of view.

    Parameters
    ----------
    signal, labels
        ``(n, 5, S, S)`` and ``(n, S, S)`` from :func:`render_cells`.
    corners
        ``(n, 2)`` int top-left (row, col) of each crop in the field; may reach outside it.

    Returns
    -------
    image ``(5, F, F)`` float32 (maximum over overlapping cells), nuclei ``(F, F)`` and cells
    ``(F, F)`` int32 instance labels (1..n, 0 background; first cell wins an overlap).
    """
    s = signal.shape[-1]
    pad = np.zeros((5, field_size + 2 * s, field_size + 2 * s), np.float32)
    nuclei = np.zeros(pad.shape[1:], np.int32)
    cells = np.zeros(pad.shape[1:], np.int32)
    for i, (r, c) in enumerate(np.asarray(corners) + s):
        win = (slice(r, r + s), slice(c, c + s))
        pad[(slice(None), *win)] = np.maximum(pad[(slice(None), *win)], signal[i])
        free = cells[win] == 0
        cells[win][free & (labels[i] >= 1)] = i + 1
        nuclei[win][free & (labels[i] == 2)] = i + 1
    inner = (slice(s, s + field_size), slice(s, s + field_size))
    return pad[(slice(None), *inner)], nuclei[inner], cells[inner]
