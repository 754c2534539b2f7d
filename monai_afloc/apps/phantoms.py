# Copyright (c) monai_afloc contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
Out-of-distribution chest phantoms: a second, independent generator of frontal chest radiograph-like images with
ground-truth masks, to check that a model trained on :mod:`monai_afloc.apps.synthetic` localizes on images it has
never seen the like of.

The phantom shares no code, shape model or parameter with the training generator. It models a PA radiograph as
X-ray attenuation along the beam in a *patient frame* (``x`` to the image's right = the patient's left, ``y``
downward, the lungs spanning about ``[-0.8, 0.8] x [-0.75, 0.45]``):

- soft tissue: a superellipse torso whose thickness falls off towards its edge, a neck, optional arms and breast
  shadows; bone: a segmented spine, posterior and anterior ribs as curved bands with brighter cortices, clavicles,
  humeral heads;
- air: two lungs, each a closed Catmull-Rom spline through nine jittered landmarks (apex, costophrenic angle,
  diaphragm dome, hilum, ...), the right hemidiaphragm higher; a trachea; a gastric bubble under the left dome;
- the mediastinum, an aortic knob, a tilted superelliptic heart shadow sized by a cardiothoracic ratio, hilar
  shadows and branching vessels (lung markings) that taper from the hila;
- the image: ``1 - exp(-k * attenuation)`` at a per-case exposure ``k``, a window, a gamma, a heel-effect
  gradient, blur, signal-dependent noise, and sometimes a side marker and ECG electrodes; the whole patient is
  scaled, shifted and rotated in the field of view.

Findings (0 to 2 per case, among :data:`PHANTOM_PROMPTS`): ``"opacity"`` (a patchy airspace opacity in a lung),
``"nodule"`` (a small dense round opacity), ``"pleural effusion"`` (basal fluid with a meniscus that rises
laterally; left, right or bilateral), ``"pneumothorax"`` (an apical-lateral lucent rim without lung markings
outside a visible pleural line; left or right) and ``"cardiomegaly"`` (a heart shadow with a cardiothoracic ratio
of 0.56-0.68; its mask is the heart shadow above the diaphragm). Laterality is the patient's: the patient's right
lies on the image's left.

Example::

    from monai_afloc.apps.phantoms import ChestPhantomGenerator, write_phantom_split

    case = ChestPhantomGenerator(image_size=256, seed=0).generate(3)
    case["image"].shape, [(f["name"], f["laterality"], f["box"]) for f in case["findings"]]
    json_path = write_phantom_split("/tmp/phantoms", 20, ChestPhantomGenerator(seed=1))
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from monai_afloc.utils.validation import check_int, check_number

__all__ = [
    "PHANTOM_PROMPTS",
    "PHANTOM_JSON",
    "ChestPhantomGenerator",
    "write_phantom_split",
    "evaluate_phantoms",
    "format_phantom_table",
]

#: the findings of the phantoms, each also its location-free prompt
PHANTOM_PROMPTS: tuple[str, ...] = ("opacity", "nodule", "pleural effusion", "pneumothorax", "cardiomegaly")
#: the COCO file :func:`write_phantom_split` writes in its folder
PHANTOM_JSON = "phantom-annotations.json"

_SIDES = ("right", "left")  # patient's sides; right -> negative x (image left)
_ZONES = ("upper", "middle", "lower")
# lung landmarks (lateral distance u from the midline, y downward), in angular order around the lung's centre
_LUNG_LANDMARKS = np.array(
    [
        [0.75, 0.00],  # lateral wall
        [0.79, 0.43],  # costophrenic angle
        [0.47, 0.31],  # diaphragm dome
        [0.16, 0.40],  # cardiophrenic angle
        [0.10, 0.15],  # lower medial border
        [0.12, -0.10],  # hilum
        [0.11, -0.45],  # upper medial border
        [0.32, -0.73],  # apex
        [0.62, -0.47],  # upper lateral wall
    ]
)
_LUNG_CENTRE = np.array([0.42, -0.06])


def _catmull_rom(points: np.ndarray, samples: int = 24) -> np.ndarray:
    """A closed uniform Catmull-Rom spline through ``points [P, 2]``: ``[P * samples, 2]``."""
    p0, p1, p2, p3 = (np.roll(points, s, axis=0) for s in (1, 0, -1, -2))
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[None, :, None]
    t2, t3 = t * t, t * t * t
    curve = 0.5 * (
        2 * p1[:, None] + (-p0 + p2)[:, None] * t + (2 * p0 - 5 * p1 + 4 * p2 - p3)[:, None] * t2
        + (-p0 + 3 * p1 - 3 * p2 + p3)[:, None] * t3
    )
    return curve.reshape(-1, 2)


class _Lung:
    """One lung as a star-shaped closed curve around ``centre``: radius of the boundary per polar angle."""

    def __init__(self, side: str, landmarks: np.ndarray, centre: np.ndarray):
        self.side = side
        self.sign = -1.0 if side == "right" else 1.0  # x = sign * u
        self.centre = centre
        curve = _catmull_rom(landmarks) - centre
        theta = np.arctan2(curve[:, 1], curve[:, 0])
        order = np.argsort(theta)
        self.theta, self.radius = theta[order], np.hypot(curve[order, 0], curve[order, 1])
        self.top, self.bottom = float(landmarks[:, 1].min()), float(landmarks[:, 1].max())
        self.lateral = float(landmarks[:, 0].max())

    def polar(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distance from the centre, polar angle, boundary radius at that angle) of patient points."""
        du, dy = self.sign * x - self.centre[0], y - self.centre[1]
        rho, theta = np.hypot(du, dy), np.arctan2(dy, du)
        return rho, theta, self.boundary(theta)

    def boundary(self, theta: np.ndarray) -> np.ndarray:
        return np.interp(theta, self.theta, self.radius, period=2 * np.pi)

    def point(self, theta: float, fraction: float) -> tuple[float, float]:
        """The patient point at ``fraction`` of the way from the centre to the boundary along ``theta``."""
        r = fraction * float(self.boundary(np.array([theta]))[0])
        return self.sign * (self.centre[0] + r * math.cos(theta)), self.centre[1] + r * math.sin(theta)


def _superellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float, p: float, tilt: float = 0.0):
    """``|x'/a|^p + |y'/b|^p`` of points rotated by ``-tilt`` about ``(cx, cy)`` (< 1 inside)."""
    dx, dy = x - cx, y - cy
    c, s = math.cos(tilt), math.sin(tilt)
    xr, yr = c * dx + s * dy, -s * dx + c * dy
    return np.abs(xr / a) ** p + np.abs(yr / b) ** p


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _segments_field(
    x: np.ndarray, y: np.ndarray, seg: np.ndarray, width: np.ndarray, weight: np.ndarray, boxes: np.ndarray
) -> np.ndarray:
    """
    Max over segments ``seg [M, 2, 2]`` (patient frame) of ``weight * exp(-(distance / width)^2)`` at the points
    ``x, y [H, W]``, each segment evaluated only inside its pixel box ``boxes [M, 4]`` (row0, row1, col0, col1).
    """
    out = np.zeros_like(x)
    for (ax, ay), (bx, by), w, k, (r0, r1, c0, c1) in zip(seg[:, 0], seg[:, 1], width, weight, boxes):
        if r1 <= r0 or c1 <= c0:
            continue
        xs, ys = x[r0:r1, c0:c1], y[r0:r1, c0:c1]
        vx, vy = bx - ax, by - ay
        t = np.clip(((xs - ax) * vx + (ys - ay) * vy) / max(vx * vx + vy * vy, 1e-12), 0.0, 1.0)
        d2 = (xs - ax - t * vx) ** 2 + (ys - ay - t * vy) ** 2
        np.maximum(out[r0:r1, c0:c1], k * np.exp(-d2 / (w * w)), out=out[r0:r1, c0:c1])
    return out


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Band-limited noise in about [0, 1]: a ``cells x cells`` random grid upsampled (cubic) to ``shape``."""
    grid = rng.random((cells, cells))
    out = ndimage.zoom(grid, (shape[0] / cells, shape[1] / cells), order=3, mode="reflect", grid_mode=True)
    return np.clip(out[: shape[0], : shape[1]], 0.0, 1.0)


def _box(mask: np.ndarray) -> list[int]:
    """The tight ``[x, y, w, h]`` box of a non-empty bool mask (pixels, inclusive extent)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


class _View:
    """The field of view: patient frame <-> image pixels (zoom, shift, in-plane rotation, body width and height)."""

    def __init__(self, n: int, zoom: float, rotation: float, body: tuple[float, float], shift: tuple[float, float],
                 anchor_y: float):
        self.n, self.zoom, self.rotation, self.body, self.anchor_y = n, zoom, rotation, body, anchor_y
        self.centre = ((n - 1) / 2 + shift[0], (n - 1) / 2 + shift[1])
        self.scale = zoom * n / 2  # pixels per unit of the un-stretched frame
        self.pixels_per_unit = self.scale * (body[0] + body[1]) / 2
        self._cos, self._sin = math.cos(rotation), math.sin(rotation)

    def patient_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Patient ``x, y`` (float32 ``[n, n]``) of every pixel centre."""
        rows, cols = np.mgrid[0 : self.n, 0 : self.n].astype(np.float32)
        dx, dy = (cols - self.centre[0]) / self.scale, (rows - self.centre[1]) / self.scale
        x = (self._cos * dx + self._sin * dy) / self.body[0]
        y = (-self._sin * dx + self._cos * dy) / self.body[1] + self.anchor_y
        return x.astype(np.float32), y.astype(np.float32)

    def to_pixel(self, x: Any, y: Any) -> tuple[Any, Any]:
        """(column, row) of patient points (floats; :meth:`to_pixel_index` rounds them)."""
        xb, yb = np.asarray(x) * self.body[0], (np.asarray(y) - self.anchor_y) * self.body[1]
        dx, dy = self._cos * xb - self._sin * yb, self._sin * xb + self._cos * yb
        return self.centre[0] + dx * self.scale, self.centre[1] + dy * self.scale

    def to_pixel_index(self, x: float, y: float) -> tuple[int, int]:
        col, row = self.to_pixel(x, y)
        return int(round(float(col))), int(round(float(row)))

    def segment_boxes(self, seg: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Pixel boxes ``[M, 4]`` (row0, row1, col0, col1; clipped, end-exclusive) around segments ``[M, 2, 2]``,
        each widened by ``margin [M]`` patient units."""
        col, row = self.to_pixel(seg[..., 0], seg[..., 1])
        pad = np.asarray(margin) * self.pixels_per_unit * 1.2 + 2
        r0 = np.floor(row.min(axis=1) - pad).clip(0, self.n)
        r1 = np.ceil(row.max(axis=1) + pad + 1).clip(0, self.n)
        c0 = np.floor(col.min(axis=1) - pad).clip(0, self.n)
        c1 = np.ceil(col.max(axis=1) + pad + 1).clip(0, self.n)
        return np.stack([r0, r1, c0, c1], axis=1).astype(np.intp)


class ChestPhantomGenerator:
    """
    Seeded generator of frontal chest radiograph phantoms with finding masks; case ``index`` is a pure function of
    ``(seed, index)``. See the module docstring for the model.

    Args:
        image_size: side of the square images (pixels, >= 64).
        seed: generator seed (>= 0).
        max_findings: at most this many findings per case (0, 1 or 2); never two of the same kind.
        normal_fraction: probability of a case without findings, in [0, 1].
        prompts: the findings to draw from (a subset of :data:`PHANTOM_PROMPTS`).

    ``generate(index)`` returns ``{"image", "index", "seed", "findings", "anatomy"}``:

    - ``image``: ``uint8 [H, W]`` (MONOCHROME2: air dark, bone bright);
    - ``findings``: a list of ``{"name"`` (one of :data:`PHANTOM_PROMPTS`, the location-free prompt),
      ``"label_text"`` (a location-bearing phrase, e.g. ``"left pleural effusion"``), ``"laterality"``
      (``"left"``, ``"right"``, ``"bilateral"`` or ``None``), ``"zone"`` (``"upper"``/``"middle"``/``"lower"`` or
      ``None``), ``"mask"`` (bool ``[H, W]``), ``"box"`` (the tight ``[x, y, w, h]`` of the mask) and ``"boxes"``
      (one tight box per side: two for a bilateral effusion)``}``;
    - ``anatomy``: the case's scalar parameters (cardiothoracic ratio, rotation, zoom, exposure, gamma, noise, ...).

    Example::

        >>> gen = ChestPhantomGenerator(image_size=128, seed=0)
        >>> case = gen.generate(5)
        >>> case["image"].shape, case["image"].dtype
        ((128, 128), dtype('uint8'))
        >>> all(f["mask"].any() and f["name"] in PHANTOM_PROMPTS for f in case["findings"])
        True
    """

    def __init__(
        self,
        image_size: int = 256,
        seed: int = 0,
        max_findings: int = 2,
        normal_fraction: float = 0.15,
        prompts: Sequence[str] = PHANTOM_PROMPTS,
    ) -> None:
        self.image_size = check_int("image_size", image_size, minimum=64)
        self.seed = check_int("seed", seed, minimum=0)
        self.max_findings = check_int("max_findings", max_findings, minimum=0, maximum=2)
        self.normal_fraction = check_number("normal_fraction", normal_fraction, minimum=0.0, maximum=1.0)
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise TypeError(f"prompts must be a sequence of str among {list(PHANTOM_PROMPTS)}, got {prompts!r}.")
        unknown = [p for p in prompts if p not in PHANTOM_PROMPTS]
        if unknown or not prompts:
            raise ValueError(f"prompts must be a non-empty subset of {list(PHANTOM_PROMPTS)}, got {list(prompts)!r}.")
        self.prompts = tuple(dict.fromkeys(prompts))

    def __repr__(self) -> str:
        return (
            f"ChestPhantomGenerator(image_size={self.image_size}, seed={self.seed}, max_findings={self.max_findings}, "
            f"normal_fraction={self.normal_fraction}, prompts={self.prompts})"
        )

    # ----------------------------------------------------------------------------------------------------------
    def _choose_findings(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        """Kinds and sides of this case's findings (no effusion beside a pneumothorax on the same side)."""
        if self.max_findings == 0 or rng.random() < self.normal_fraction:
            return []
        count = 1 if self.max_findings == 1 or rng.random() < 0.55 else 2
        names = list(rng.choice(len(self.prompts), size=min(count, len(self.prompts)), replace=False))
        findings = [{"name": self.prompts[int(i)]} for i in names]
        for f in findings:
            if f["name"] == "pleural effusion":
                f["laterality"] = ("right", "left", "bilateral")[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
            elif f["name"] == "cardiomegaly":
                f["laterality"] = None
            else:
                f["laterality"] = _SIDES[int(rng.integers(2))]
        by_name = {f["name"]: f for f in findings}
        if "pleural effusion" in by_name and "pneumothorax" in by_name:
            ptx = by_name["pneumothorax"]["laterality"]
            by_name["pleural effusion"]["laterality"] = "left" if ptx == "right" else "right"
        return findings

    def generate(self, index: int) -> dict[str, Any]:
        """The case ``index`` (>= 0): see the class docstring for the keys."""
        index = check_int("index", index, minimum=0)
        rng = np.random.default_rng([self.seed, index, 0x0FF1CE])
        n = self.image_size
        u = rng.uniform
        findings = self._choose_findings(rng)
        kinds = {f["name"]: f for f in findings}

        # ---- field of view: image pixel -> patient frame (zoom, shift, rotation, body size) --------------------
        view = _View(
            n, zoom=u(0.86, 1.1), rotation=math.radians(u(-7.0, 7.0)), body=(u(0.9, 1.1), u(0.92, 1.08)),
            shift=tuple(n * u(-0.05, 0.05, size=2)), anchor_y=u(-0.2, -0.04),
        )
        x, y = view.patient_grid()
        px = view.pixels_per_unit

        # ---- soft tissue ------------------------------------------------------------------------------------
        torso_a = u(0.9, 1.0)
        torso = _superellipse(x, y, 0.0, u(0.12, 0.22), torso_a, u(1.02, 1.12), u(2.6, 4.0))
        thickness = np.sqrt(np.clip(1.0 - torso, 0.0, 1.0))
        neck = _sigmoid((u(0.18, 0.24) - np.abs(x)) / 0.02) * _sigmoid((-0.72 - y) / 0.04)
        thickness = np.maximum(thickness, 0.5 * neck)
        if rng.random() < 0.35:  # arms held against the torso
            arm_half = u(0.1, 0.13)
            for s in (-1.0, 1.0):
                arm = _superellipse(x, y, s * (torso_a + 0.5 * arm_half), u(0.2, 0.35), arm_half, 0.95, 2.5)
                thickness = np.maximum(thickness, 0.55 * np.sqrt(np.clip(1 - arm, 0, 1)))
        atten = 0.85 * thickness
        if rng.random() < 0.4:  # breast shadows over the lower zones
            b_y, b_a, b_b, b_k = u(0.3, 0.5), u(0.28, 0.38), u(0.2, 0.28), u(0.05, 0.1)
            for s in (-1.0, 1.0):
                atten += b_k * _sigmoid((1 - _superellipse(x, y, s * u(0.42, 0.55), b_y, b_a, b_b, 2.0)) / 0.15)

        # ---- lungs -------------------------------------------------------------------------------------------
        lungs = {}
        for side in _SIDES:
            marks = _LUNG_LANDMARKS + rng.normal(0.0, 0.022, size=_LUNG_LANDMARKS.shape)
            marks[:, 0] *= u(0.94, 1.06)
            marks[:, 1] = _LUNG_CENTRE[1] + (marks[:, 1] - _LUNG_CENTRE[1]) * u(0.94, 1.08)
            if side == "right":
                marks[2:4, 1] -= u(0.02, 0.07)  # the right hemidiaphragm sits higher
            else:
                marks[3:5, 0] += u(0.03, 0.08)  # the heart pushes the left lung's lower medial border out
            lungs[side] = _Lung(side, marks, _LUNG_CENTRE + rng.normal(0.0, 0.01, size=2))
        polar = {side: lung.polar(x, y) for side, lung in lungs.items()}
        diaphragm = max(lungs["left"].bottom, lungs["right"].bottom) - 0.04

        # ---- mediastinum, heart --------------------------------------------------------------------------------
        thorax_width = lungs["right"].lateral + lungs["left"].lateral
        ctr = u(0.56, 0.68) if "cardiomegaly" in kinds else u(0.38, 0.49)
        heart_w = ctr * thorax_width
        heart_a, heart_b = heart_w / 2, heart_w / 2 * u(0.72, 0.86)
        heart_cx, heart_cy = heart_w * u(0.12, 0.2), u(0.36, 0.42) - 0.75 * heart_b
        heart_field = _superellipse(x, y, heart_cx, heart_cy, heart_a, heart_b, u(2.0, 2.5), math.radians(u(15, 32)))
        heart = _sigmoid((1 - heart_field) / 0.06)
        med_half = u(0.1, 0.14) + 0.03 * np.clip((y + 0.2) / 0.4, 0.0, 1.0)
        mediastinum = _sigmoid((med_half - np.abs(x - u(-0.01, 0.03))) / 0.015) * _sigmoid((heart_cy - y) / 0.05)
        knob = _sigmoid((1 - _superellipse(x, y, u(0.08, 0.12), u(-0.34, -0.26), 0.085, 0.09, 2.0)) / 0.3)
        mediastinum = np.maximum(mediastinum, knob) * _sigmoid((y + 0.85) / 0.05)
        solid = np.maximum(heart, mediastinum)

        # ---- findings that reshape the lungs' air: effusion (fluid), pneumothorax (free air) -------------------
        effusion: dict[str, np.ndarray] = {}
        if "pleural effusion" in kinds:
            lat = kinds["pleural effusion"]["laterality"]
            for side in _SIDES if lat == "bilateral" else (lat,):
                lung = lungs[side]
                depth = u(0.18, 0.4) * (lung.bottom - lung.top)
                lateral = np.clip(lung.sign * x / lung.lateral, 0.0, 1.0)
                level = lung.bottom - depth * (0.55 + 0.45 * lateral**2)  # the meniscus rises laterally
                effusion[side] = _sigmoid((y - level) / 0.015)
        ptx: dict[str, np.ndarray] = {}
        ptx_line = np.zeros_like(x)
        if "pneumothorax" in kinds:
            side = kinds["pneumothorax"]["laterality"]
            rho, theta, rb = polar[side]
            # the lung falls away from the apex and the upper lateral wall (polar angle about -70 degrees)
            toward = np.clip(np.cos(theta - math.radians(u(-85.0, -55.0))), 0.0, 1.0) ** 1.5
            rc = rb * (1.0 - u(0.16, 0.34) * toward)
            ptx[side] = _sigmoid((rho - rc) / 0.006) * (toward > 0.15)
            ptx_line = np.exp(-(((rho - rc) * px / 1.1) ** 2)) * (toward > 0.25) * (rho < rb)

        # ---- air in the lungs, hila and vessels (lung markings) ------------------------------------------------
        air = np.zeros_like(x)
        vessels = np.zeros_like(x)
        lung_hard = {}
        for side, lung in lungs.items():
            rho, _, rb = polar[side]
            inside = _sigmoid((rb - rho) / 0.012)
            lung_hard[side] = (rho < rb) & (solid < 0.5)
            lung_air = inside * (0.6 + 0.4 * np.sqrt(np.clip(1 - (rho / rb) ** 2, 0, 1))) * (1 - solid)
            hx, hy = lung.sign * u(0.2, 0.26), u(-0.12, -0.02)
            seg, width, weight = _vessel_tree(rng, hx, hy, lung.sign)
            marks = _segments_field(x, y, seg, width, weight, view.segment_boxes(seg, 3 * width))
            marks = marks + 0.05 * np.exp(-((x - hx) ** 2 + (y - hy) ** 2) / (2 * 0.06**2))
            for region, keep_air in ((ptx.get(side), 1.35), (effusion.get(side), 0.0)):
                if region is not None:  # free air: more air, no lung behind it; fluid: no air
                    lung_air = lung_air * (1 + (keep_air - 1) * region)
                    marks = marks * (1 - region)
            air += lung_air
            vessels += marks * inside
        trachea = _sigmoid((0.032 - np.abs(x - 0.01 * rng.normal())) / 0.006) * _sigmoid((-0.22 - y) / 0.02)
        bubble = np.zeros_like(x)
        if rng.random() < 0.6:  # gastric air under the left hemidiaphragm, with a flat fluid level
            top = lungs["left"].bottom - 0.05
            g = _superellipse(x, y, u(0.25, 0.45), top + u(0.08, 0.13), u(0.07, 0.11), 0.06, 2.0)
            bubble = _sigmoid((1 - g) / 0.1) * (y < top + u(0.12, 0.16))
        atten += -0.62 * air - 0.18 * trachea - 0.25 * bubble + 0.1 * heart + 0.08 * mediastinum + vessels

        # ---- bone -----------------------------------------------------------------------------------------------
        lateral = np.abs(x)
        period, phase = u(0.095, 0.12), u(0, 1)
        vertebra = 0.75 + 0.25 * (np.cos(2 * np.pi * (y / period + phase)) > -0.6)
        bone = 0.18 * _sigmoid((u(0.06, 0.08) - lateral) / 0.01) * vertebra * _sigmoid((y + 0.95) / 0.05)
        n_ribs = int(rng.integers(9, 12))
        start, gap = u(-0.78, -0.7), u(0.098, 0.118)
        y0 = start + gap * np.arange(n_ribs) + rng.normal(0, 0.008, size=n_ribs)
        half = u(0.018, 0.026)
        # posterior ribs: rise a little from the spine, then fall laterally; the nearest rib of each pixel
        offset = y + u(0.08, 0.16) * lateral - u(0.38, 0.5) * lateral**2
        k = np.clip(np.rint((offset - start) / gap), 0, n_ribs - 1).astype(np.intp)
        dist = np.abs(offset - y0[k]) / half
        d2 = dist * dist
        rib = 0.6 * np.exp(-(d2 * d2 * d2 * d2)) + 0.5 * np.exp(-(((dist - 1.0) * half * px / 1.2) ** 2))
        rib_extent = _sigmoid((lateral - 0.08) / 0.01) * _sigmoid((0.9 - lateral) / 0.03)
        rib_extent = rib_extent * _sigmoid((diaphragm + 0.15 - y) / 0.05)
        bone += u(0.08, 0.13) * rib * rib_extent
        # anterior ribs: fainter, falling towards the midline
        offset_a = y - u(0.3, 0.42) * (0.88 - lateral)
        ka = np.clip(np.rint((offset_a - start - 0.12) / gap), 0, n_ribs - 4).astype(np.intp)
        dist_a = np.abs(offset_a - (start + 0.12 + gap * ka)) / (half * 1.2)
        front = np.exp(-(dist_a**6)) * _sigmoid((lateral - 0.3) / 0.04) * _sigmoid((0.86 - lateral) / 0.03)
        bone += 0.05 * front * _sigmoid((diaphragm - y) / 0.05)
        clav_y, clav_tilt = u(-0.66, -0.56), u(0.08, 0.22)
        clav_centre = clav_y - clav_tilt * (lateral - 0.08) + 0.25 * (lateral - 0.35) ** 2
        clav = np.exp(-((np.abs(y - clav_centre) / 0.028) ** 4))
        bone += 0.18 * clav * _sigmoid((lateral - 0.07) / 0.01) * _sigmoid((u(0.6, 0.75) - lateral) / 0.02)
        humerus_y = u(-0.72, -0.58)
        for s in (-1.0, 1.0):
            bone += 0.16 * _sigmoid((1 - _superellipse(x, y, s * u(0.9, 1.0), humerus_y, 0.11, 0.12, 2.0)) / 0.08)
        bone *= np.maximum(_sigmoid((1.0 - torso) / 0.03), 0.8 * neck)
        atten += bone

        # ---- findings' densities and masks ---------------------------------------------------------------------
        taken = np.zeros((n, n), dtype=bool)  # fluid or free air: no opacity or nodule placed there
        for side, region in effusion.items():
            atten += 0.06 * region * (polar[side][0] < polar[side][2])
            taken |= (region > 0.5) & lung_hard[side]
        for side, region in ptx.items():
            taken |= (region > 0.5) & lung_hard[side]
        atten += 0.1 * ptx_line
        out_findings = []
        for f in sorted(findings, key=lambda f: _ORDER[f["name"]]):
            name, side, zone = f["name"], f["laterality"], None
            if name == "cardiomegaly":
                parts = [(heart_field < 1.0) & (y < diaphragm)]  # the heart shadow above the diaphragm
                text = "cardiomegaly"
            elif name == "pleural effusion":
                parts = [(effusion[s] > 0.5) & lung_hard[s] for s in (_SIDES if side == "bilateral" else (side,))]
                text = "bilateral pleural effusions" if side == "bilateral" else f"{side} pleural effusion"
                zone = "lower"
            elif name == "pneumothorax":
                parts = [(ptx[side] > 0.5) & lung_hard[side]]
                text, zone = f"{side} pneumothorax", "upper"
            else:
                lung = lungs[side]
                for _ in range(40):  # a place inside the lung, off the heart, the fluid and the free air
                    cx, cy = lung.point(u(-math.pi, math.pi), u(0.1, 0.68))
                    col, row = view.to_pixel_index(cx, cy)
                    if 0 <= row < n and 0 <= col < n and lung_hard[side][row, col] and not taken[row, col]:
                        break
                zone = _ZONES[int(np.clip((cy - lung.top) // ((lung.bottom - lung.top) / 3), 0, 2))]
                text = f"{side} {zone} zone {name}"
                if name == "nodule":
                    d = np.hypot(x - cx, y - cy) / u(0.022, 0.05)
                    atten += u(0.22, 0.4) * np.sqrt(np.clip(1 - d * d, 0, 1)) + 0.05 * _sigmoid((1 - d) / 0.08)
                    parts = [(d < 1.0) & lung_hard[side]]
                else:
                    field = _patch(rng, x, y, cx, cy, u(0.08, 0.16)) * (polar[side][0] < polar[side][2] + 0.01)
                    atten += u(0.35, 0.6) * field * (1 - 0.5 * solid)
                    parts = [(field > 0.3) & lung_hard[side]]
            mask = np.logical_or.reduce(parts)
            if not mask.any():
                continue
            out_findings.append(
                {
                    "name": name,
                    "label_text": text,
                    "laterality": side,
                    "zone": zone,
                    "mask": mask,
                    "box": _box(mask),
                    "boxes": [_box(p) for p in parts if p.any()],
                }
            )

        # ---- exposure, detector, noise -------------------------------------------------------------------------
        exposure = u(1.4, 2.4)
        signal = (1 - np.exp(-exposure * np.clip(atten, 0, None))) / (1 - math.exp(-exposure * 1.3))
        low, width = u(-0.04, 0.08), u(0.9, 1.12)
        gamma = u(0.75, 1.35)
        signal = np.clip((signal - low) / width, 0, 1) ** gamma
        heel = u(-0.08, 0.08) * (np.arange(n, dtype=np.float32) / n - 0.5)
        signal = signal * (1 + heel[None, :]) + u(0.0, 0.06) * (1 - signal) * _smooth_noise(rng, (n, n), 4)
        blur = u(0.35, 1.3) * n / 256
        signal = ndimage.gaussian_filter(signal, blur, mode="nearest")
        noise = u(0.008, 0.03)
        signal = signal + noise * (1.5 - signal) * rng.standard_normal((n, n), dtype=np.float32)
        signal = _decorate(rng, signal, x, y, torso, n)
        image = np.round(np.clip(signal, 0, 1) * 255).astype(np.uint8)
        anatomy = {
            "cardiothoracic_ratio": float(ctr),
            "rotation_deg": math.degrees(view.rotation),
            "zoom": float(view.zoom),
            "body_size": [float(b) for b in view.body],
            "exposure": float(exposure),
            "gamma": float(gamma),
            "blur_px": float(blur),
            "noise": float(noise),
        }
        return {"image": image, "index": index, "seed": self.seed, "findings": out_findings, "anatomy": anatomy}


_ORDER = {"cardiomegaly": 0, "pleural effusion": 1, "pneumothorax": 2, "opacity": 3, "nodule": 4}


def _vessel_tree(rng: np.random.Generator, hx: float, hy: float, sign: float):
    """Segments ``[M, 2, 2]``, widths and weights of vessels branching from a hilum at ``(hx, hy)`` into a lung."""
    n_v = int(rng.integers(7, 11))
    angles = np.sort(rng.uniform(-2.6, 1.9, size=n_v))
    angles = angles if sign > 0 else np.pi - angles  # mirrored for the right lung
    length = rng.uniform(0.15, 0.28, size=n_v)
    hilum = np.tile([hx, hy], (n_v, 1))
    mid = hilum + length[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    seg, widths, weights = [np.stack([hilum, mid], axis=1)], [np.full(n_v, 0.014)], [np.full(n_v, 0.07)]
    for spread in (-0.35, 0.35):
        a2 = angles + spread + rng.normal(0, 0.12, size=n_v)
        end = mid + rng.uniform(0.12, 0.25, size=n_v)[:, None] * np.stack([np.cos(a2), np.sin(a2)], axis=1)
        seg.append(np.stack([mid, end], axis=1))
        widths.append(np.full(n_v, 0.009))
        weights.append(np.full(n_v, 0.04))
    return np.concatenate(seg), np.concatenate(widths), np.concatenate(weights)


def _patch(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, cx: float, cy: float, spread: float):
    """A patchy airspace opacity in [0, 1]: a few overlapping Gaussian puffs mottled by smooth noise."""
    blobs = np.zeros_like(x)
    for _ in range(int(rng.integers(3, 6))):
        bx, by = cx + rng.normal(0, spread * 0.6), cy + rng.normal(0, spread * 0.6)
        r2 = ((x - bx) ** 2 + (y - by) ** 2) / (spread * rng.uniform(0.5, 0.9)) ** 2
        np.maximum(blobs, np.exp(-r2), out=blobs)
    return blobs * (0.55 + 0.45 * _smooth_noise(rng, x.shape, int(rng.integers(10, 18))))


def _decorate(rng: np.random.Generator, signal: np.ndarray, x: np.ndarray, y: np.ndarray, torso: np.ndarray, n: int):
    """A side marker ("L", image right) in an upper corner and, sometimes, ECG electrodes (rings) on the chest."""
    if rng.random() < 0.6:
        size, bar = max(6, n // 24), max(2, n // 96)
        r0, c0 = int(rng.integers(n // 40, n // 10)), int(n - size - rng.integers(n // 40, n // 10))
        value = rng.uniform(0.85, 1.0)
        signal[r0 : r0 + size, c0 : c0 + bar] = value
        signal[r0 + size - bar : r0 + size, c0 : c0 + size * 2 // 3] = value
    if rng.random() < 0.25:
        for _ in range(int(rng.integers(1, 4))):
            d = np.hypot(x - rng.uniform(-0.8, 0.8), y - rng.uniform(-0.6, 0.5))
            ring = np.exp(-(((d - 0.035) / 0.008) ** 2)) * (torso < 1)
            signal = np.maximum(signal, ring * rng.uniform(0.75, 0.95))
    return signal


def write_phantom_split(
    out_dir: str | os.PathLike, n: int, generator: ChestPhantomGenerator, start_index: int = 0
) -> str:
    """
    Write cases ``start_index .. start_index + n - 1`` of ``generator`` as an MS-CXR-like COCO split that
    :func:`~monai_afloc.apps.evaluation.read_synthetic_annotations` reads: ``images/phantom_<seed>_<index>.png``,
    one mask PNG per box under ``masks/`` and :data:`PHANTOM_JSON`.

    The JSON holds ``images`` (``id``, ``file_name``, ``path`` relative to ``out_dir``, ``width``, ``height``,
    ``case_index``, ``anatomy``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``,
    ``area``, ``iscrowd``, ``label_text`` (location-bearing, e.g. ``"left pleural effusion"``),
    ``label_text_location_free`` (the prompt, e.g. ``"pleural effusion"``), ``mask_path``, ``mask_area``,
    ``laterality``, ``zone``) and ``categories`` (one per :data:`PHANTOM_PROMPTS`, named by the prompt). A bilateral
    effusion gives one annotation per side, each with the part of the mask inside its box.

    Args:
        out_dir: folder to write (created if needed).
        n: number of cases (>= 1).
        generator: the :class:`ChestPhantomGenerator` to draw from.
        start_index: index of the first case (>= 0).

    Returns:
        The path of the JSON file.

    Example::

        json_path = write_phantom_split("/tmp/phantoms", 16, ChestPhantomGenerator(image_size=256, seed=0))
        items = read_synthetic_annotations(json_path)
    """
    from PIL import Image

    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}.")
    n = check_int("n", n, minimum=1)
    start_index = check_int("start_index", start_index, minimum=0)
    if not isinstance(generator, ChestPhantomGenerator):
        raise TypeError(f"generator must be a ChestPhantomGenerator, got {type(generator).__name__}.")
    out_dir = os.fspath(out_dir)
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    images, annotations = [], []
    for k in range(n):
        case = generator.generate(start_index + k)
        image_id = k + 1
        rel = f"images/phantom_{generator.seed}_{case['index']:07d}.png"
        Image.fromarray(case["image"]).save(os.path.join(out_dir, rel), format="PNG")
        h, w = case["image"].shape
        images.append({"id": image_id, "file_name": os.path.basename(rel), "path": rel, "width": w, "height": h,
                       "case_index": case["index"], "anatomy": case["anatomy"]})
        for finding in case["findings"]:
            for bx, by, bw, bh in finding["boxes"]:
                ann_id = len(annotations) + 1
                part = np.zeros_like(finding["mask"])
                part[by : by + bh, bx : bx + bw] = finding["mask"][by : by + bh, bx : bx + bw]
                mask_rel = f"masks/phantom_{generator.seed}_{case['index']:07d}_{ann_id:06d}.png"
                Image.fromarray(part.astype(np.uint8) * 255).save(os.path.join(out_dir, mask_rel), format="PNG")
                annotations.append({
                    "id": ann_id, "image_id": image_id, "category_id": PHANTOM_PROMPTS.index(finding["name"]) + 1,
                    "bbox": [bx, by, bw, bh], "area": bw * bh, "iscrowd": 0,
                    "label_text": finding["label_text"], "label_text_location_free": finding["name"],
                    "mask_path": mask_rel, "mask_area": int(part.sum()), "laterality": finding["laterality"],
                    "zone": finding["zone"],
                })
    coco = {
        "info": {
            "description": "monai_afloc out-of-distribution chest phantoms (ChestPhantomGenerator)",
            "generator": repr(generator), "seed": generator.seed, "start_index": start_index,
            "image_size": generator.image_size,
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": p, "supercategory": "finding"} for i, p in enumerate(PHANTOM_PROMPTS)],
    }
    json_path = os.path.join(out_dir, PHANTOM_JSON)
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(coco, fh, indent=1)
    return json_path


_METRICS = ("pointing_game", "iou", "dice", "cnr")


def _summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The overall means, their 95% intervals and the per-prompt rows of a ``localization_report``."""
    return {
        "overall": {k: report["mean"][k] for k in _METRICS},
        "ci95": {k: list(report.get("ci95", {}).get(k, [float("nan")] * 2)) for k in _METRICS},
        "per_prompt": {
            name: {"n": int(row["n"]), **{k: row[k] for k in _METRICS}}
            for name, row in sorted(report["per_category"].items(), key=lambda kv: PHANTOM_PROMPTS.index(kv[0]))
        },
        "n": int(report["n"]),
    }


def evaluate_phantoms(
    checkpoint_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    n: int = 120,
    seed: int = 0,
    image_size: int = 256,
    device: str | None = None,
    n_bootstrap: int = 200,
) -> dict[str, Any]:
    """
    Score a checkpoint on ``n`` out-of-distribution phantoms (every one with 1 or 2 findings) exactly as the demo
    scores its in-distribution test split: :meth:`TextPromptLocalizer.from_checkpoint` gives the network and its
    inference settings (frame size, σ), then
    ``evaluate_localization(net, items, priors=None, shuffled=True, sigma=loc.sigma, frame_size=loc.image_size)``
    with the location-free prompts (:data:`PHANTOM_PROMPTS`) first and the location-bearing phrases second.

    Args:
        checkpoint_dir: a monai_afloc checkpoint folder (e.g. the demo's ``demo_out/models/afloc``) or a release
            ``.ckpt``.
        out_dir: where the phantom split is written (:func:`write_phantom_split`; overwritten).
        n: number of phantom images (>= 2, so that the shuffled control has another image).
        seed: phantom generator seed.
        image_size: phantom side in pixels.
        device: where the network runs (``None``: CPU).
        n_bootstrap: bootstrap resamples for the 95% intervals.

    Returns:
        ``{"afloc": summary, "shuffled": summary, "checkpoint", "annotations", "n_images", "n_items", "sigma",
        "frame_size", "seed", "image_size"}``, each summary ``{"overall": {"pointing_game", "iou", "dice", "cnr"},
        "ci95": {...: [lo, hi]}, "per_prompt": {prompt: {"n", "pointing_game", "iou", "dice", "cnr"}}, "n",
        "location_bearing": {"overall": ..., ...}}`` (location-free prompts unless under ``location_bearing``).

    Example::

        res = evaluate_phantoms("demo_out/models/afloc", "ood_out", n=120)
        print(format_phantom_table(res))
    """
    from monai_afloc.apps.evaluation import evaluate_localization, read_synthetic_annotations
    from monai_afloc.inferers.localizer import TextPromptLocalizer

    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"checkpoint_dir must be a path, got {type(checkpoint_dir).__name__}.")
    if not os.path.exists(checkpoint_dir):
        raise FileNotFoundError(f"checkpoint not found: {os.fspath(checkpoint_dir)!r}.")
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a path, got {type(out_dir).__name__}.")
    n = check_int("n", n, minimum=2)
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, minimum=0)
    generator = ChestPhantomGenerator(image_size=image_size, seed=seed, normal_fraction=0.0)
    json_path = write_phantom_split(out_dir, n, generator)
    items = read_synthetic_annotations(json_path)
    loc = TextPromptLocalizer.from_checkpoint(checkpoint_dir, device=device)
    res = evaluate_localization(loc.network, items, priors=None, shuffled=True, sigma=loc.sigma,
                                frame_size=loc.image_size, n_bootstrap=n_bootstrap, seed=seed)
    out: dict[str, Any] = {}
    for run in ("afloc", "shuffled"):
        summary = _summary(res[run])
        summary["location_bearing"] = _summary(res[run]["location_bearing"])
        out[run] = summary
    out.update({
        "checkpoint": os.path.abspath(os.fspath(checkpoint_dir)), "annotations": os.path.abspath(json_path),
        "n_images": len({it["image"] for it in items}), "n_items": len(items), "sigma": float(loc.sigma),
        "frame_size": int(loc.image_size), "seed": generator.seed, "image_size": generator.image_size,
    })
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating)) and bool(np.isfinite(value))


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if _finite(value) else "n/a"


def format_phantom_table(results: Mapping[str, Any]) -> str:
    """
    A Markdown table of :func:`evaluate_phantoms` results: one row per prompt and an ``overall`` row (with 95%
    intervals), pointing game / mIoU / CNR of the model beside the image-shuffled control.
    """
    if not isinstance(results, Mapping) or "afloc" not in results or "shuffled" not in results:
        raise ValueError("results must be the dict evaluate_phantoms returns (with 'afloc' and 'shuffled').")
    model, control = results["afloc"], results["shuffled"]
    lines = [
        "| prompt | n | pointing game | mIoU | CNR | shuffled pointing game | shuffled mIoU | shuffled CNR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for prompt, row in model["per_prompt"].items():
        ctl = control["per_prompt"].get(prompt, {})
        lines.append(
            f"| {prompt} | {row['n']} | {_fmt(row['pointing_game'])} | {_fmt(row['iou'])} | {_fmt(row['cnr'])} | "
            f"{_fmt(ctl.get('pointing_game'))} | {_fmt(ctl.get('iou'))} | {_fmt(ctl.get('cnr'))} |"
        )

    def with_ci(summary: Mapping[str, Any], key: str) -> str:
        lo, hi = summary["ci95"][key]
        ci = f" [{_fmt(lo)}, {_fmt(hi)}]" if _finite(lo) and _finite(hi) else ""
        return _fmt(summary["overall"][key]) + ci

    lines.append(
        f"| **overall** | {model['n']} | {with_ci(model, 'pointing_game')} | {with_ci(model, 'iou')} | "
        f"{with_ci(model, 'cnr')} | {with_ci(control, 'pointing_game')} | {with_ci(control, 'iou')} | "
        f"{with_ci(control, 'cnr')} |"
    )
    return "\n".join(lines)
