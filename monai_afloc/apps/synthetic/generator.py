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
A seeded generator of chest-radiograph-like images with reports and ground-truth findings.

Geometry. Every case draws its own anatomy in a "canonical" frame (``u`` to the image's right, ``v`` down; the
thorax is about 1.5 units wide) and its own field of view (zoom, shift, rotation) that maps the canonical frame
onto the pixel grid. Lungs, heart, mediastinum, ribs and findings are implicit shapes evaluated on coordinate grids
(vectorized numpy, each part on its own bounding window of pixels), so one 256 x 256 case takes a few milliseconds.

Conventions. Pixel values are MONOCHROME2 (air dark, bone and soft tissue bright), ``uint8``. Laterality is the
patient's side: the patient's right lung is on the image's left (radiological convention); the heart bulges to the
patient's left (image right) and the gastric bubble lies under the left hemidiaphragm. Lung zones are thirds of
each lung's height from the apex to the top of its diaphragm dome (upper, middle, lower); the zone of a focal finding
is read from its mask's centroid, so it always matches the image. Pneumothorax is reported as "upper" (apical), pleural
effusion as "lower", edema as "middle" (perihilar), cardiomegaly as "none". Boxes are ``[x, y, w, h]`` in pixels
(``x`` = column, ``y`` = row of the top-left pixel), tight around the mask.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy import ndimage

from monai_afloc.apps.synthetic.report import compose_report, describe_finding

__all__ = ["SYNTHETIC_FINDINGS", "SyntheticCXRGenerator"]

#: names of the findings the generator draws, in label-column order
SYNTHETIC_FINDINGS: tuple[str, ...] = (
    "Consolidation",
    "Nodule",
    "Pleural Effusion",
    "Pneumothorax",
    "Cardiomegaly",
    "Atelectasis",
    "Edema",
)

# drawing order: pneumothorax first (it defines the aerated lung that the other lung findings are clipped to)
_ORDER = ("Cardiomegaly", "Pneumothorax", "Pleural Effusion", "Edema", "Consolidation", "Atelectasis", "Nodule")
_SIDE_NAMES = ("right", "left")  # patient sides; index 0 lies on the image's left
_SIDE_SIGN = (-1.0, 1.0)
_ZONES = ("upper", "middle", "lower")
_ZONE_S = {"upper": (0.10, 0.30), "middle": (0.40, 0.60), "lower": (0.68, 0.92)}  # in units of the dome height
_RHO_AIR = 0.42  # intensity removed by a fully aerated lung
# a drawing layer of a finding: (kind, pixel window, values); kinds: "fill" (replace this fraction of the lung air),
# "add" (add intensity), "gap" (subtract intensity), "novessel" (suppress vessel texture by this fraction)
_Layer = tuple[str, tuple[slice, slice], np.ndarray]


@dataclass
class _Lung:
    sign: float  # -1: patient right (image left), +1: patient left
    medial: float  # distance of the medial border from the midline
    lateral: float  # distance of the lateral border from the midline
    apex_v: float  # v of the apex
    height: float  # apex to costophrenic angle
    dome_s: float  # top of the diaphragm dome, as a fraction of height
    dome_t: float  # across-lung position of the dome top (0 medial, 1 lateral)
    apex_t: float
    apex_k: float
    medial_drop: float

    def margin(self, a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed margin (canonical units, > 0 inside), across (t) and down (s) coordinates at lateral distance a."""
        width = self.lateral - self.medial
        t = (a - self.medial) * (1.0 / width)
        s = (v - self.apex_v) * (1.0 / self.height)
        sc = np.clip(1.0 - s, 0.0, 1.0)
        d_lat = self.lateral * (1.0 - 0.06 * sc * sc) - a
        d_med = a - self.medial
        dt = (t - self.apex_t) * (1.0 / 0.6)
        d_top = (s - self.apex_k * dt * dt) * self.height
        db = t - self.dome_t
        coef = np.where(db > 0, (1.0 - self.dome_s) / (1.0 - self.dome_t) ** 2, self.medial_drop / self.dome_t**2)
        d_bot = (self.dome_s + coef * db * db - s) * self.height
        d = np.minimum(np.minimum(d_lat, d_med), np.minimum(d_top, d_bot))
        return d, t, s

    def point(self, t: float, s: float, mid_u: float) -> tuple[float, float]:
        a = self.medial + t * (self.lateral - self.medial)
        return mid_u + self.sign * a, self.apex_v + s * self.height

    def scalar_margin(self, u: float, v: float, mid_u: float) -> float:
        d, _, _ = self.margin(np.asarray([self.sign * (u - mid_u)]), np.asarray([v]))
        return float(d[0])


class _Canvas:
    """Pixel grid <-> canonical frame for one case."""

    def __init__(self, height: int, width: int, zoom: float, shift: tuple[float, float], angle: float):
        self.h, self.w = height, width
        self.half = min(height, width) / 2.0
        self.zoom, self.shift, self.angle = zoom, shift, angle
        self.cos, self.sin = math.cos(angle), math.sin(angle)
        xs = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2.0) / self.half - shift[0]) / zoom
        ys = ((np.arange(height, dtype=np.float32) + 0.5 - height / 2.0) / self.half - shift[1]) / zoom
        self.u = (self.cos * xs[None, :] + self.sin * ys[:, None]).astype(np.float32)
        self.v = (-self.sin * xs[None, :] + self.cos * ys[:, None]).astype(np.float32)
        self.px = 1.0 / (self.half * zoom)  # canonical units per pixel

    def to_pixel(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple[Any, Any]:
        x = self.zoom * (self.cos * u - self.sin * v) + self.shift[0]
        y = self.zoom * (self.sin * u + self.cos * v) + self.shift[1]
        return x * self.half + self.w / 2.0 - 0.5, y * self.half + self.h / 2.0 - 0.5

    def window(self, u0: float, u1: float, v0: float, v1: float, pad: int = 2) -> tuple[slice, slice] | None:
        """Pixel slices (rows, cols) covering the canonical rectangle, or None when it misses the image."""
        cols, rows = self.to_pixel(np.array([u0, u1, u0, u1]), np.array([v0, v0, v1, v1]))
        r0, r1 = max(int(math.floor(rows.min())) - pad, 0), min(int(math.ceil(rows.max())) + pad + 1, self.h)
        c0, c1 = max(int(math.floor(cols.min())) - pad, 0), min(int(math.ceil(cols.max())) + pad + 1, self.w)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def soft(self, d: np.ndarray, edge_px: float = 1.0) -> np.ndarray:
        """Anti-aliased inside map from a signed margin in canonical units."""
        return np.clip(0.5 + d * (1.0 / (edge_px * self.px)), 0.0, 1.0)


@functools.lru_cache(maxsize=32)
def _interp_matrix(n_out: int, n_in: int, wrap: bool) -> np.ndarray:
    """``[n_out, n_in]`` linear interpolation weights from ``n_in`` grid values to ``n_out`` samples."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
    dist = np.abs(pos[:, None] - np.arange(n_in, dtype=np.float32)[None, :])
    if wrap:
        dist = np.minimum(dist, n_in - dist)
    else:
        pos_c = np.clip(pos, 0.0, n_in - 1.0)
        dist = np.abs(pos_c[:, None] - np.arange(n_in, dtype=np.float32)[None, :])
    return np.clip(1.0 - dist, 0.0, None).astype(np.float32)


def _box(mask: np.ndarray) -> list[int]:
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    r0, r1 = int(np.argmax(rows)), len(rows) - int(np.argmax(rows[::-1]))
    c0, c1 = int(np.argmax(cols)), len(cols) - int(np.argmax(cols[::-1]))
    return [c0, r0, c1 - c0, r1 - r0]


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}.")
    return int(value)



def _add_component(mask: np.ndarray, comps: list, full: tuple, win: tuple, m: np.ndarray, min_area: int) -> bool:
    """Place the window mask ``m`` in a full-size component; keep it (in ``mask`` and ``comps``) if large enough."""
    part = np.zeros(full, dtype=bool)
    part[win] = m
    if part.sum() < min_area:
        return False
    mask |= part
    comps.append(part)
    return True

class SyntheticCXRGenerator:
    """
    Seeded generator of chest-radiograph-like cases: a grayscale image, a radiology-style report and ground truth.

    Each case has its own anatomy (body outline, two lung fields, heart shadow, mediastinum and trachea,
    diaphragm domes with a gastric bubble, spine, ribs and clavicles, vessel texture, noise) with lung and heart size
    and shape, field of view (zoom, shift), rotation and exposure drawn per case, so that a finding's position in
    the image is not implied by its location words alone. A case holds 0 to ``max_findings`` of
    :data:`SYNTHETIC_FINDINGS`:

    - Consolidation: an irregular ill-defined blob in an upper, middle or lower zone of either lung.
    - Nodule: a small round dense opacity in either lung (diameter reported in mm).
    - Pleural Effusion: a basal opacity with a meniscus, left, right or bilateral; small ones blunt the angle.
    - Pneumothorax: an apical/lateral lucency without vessel texture bounded by a thin visceral pleural line.
    - Cardiomegaly: a heart wider than half of the thorax (normal hearts have a ratio of 0.40-0.48).
    - Atelectasis: a thin linear (plate-like) band, mostly in the middle or lower zones.
    - Edema: bilateral perihilar haze.

    Lung findings are clipped to the visible, aerated lung (outside the heart, any pneumothorax and any effusion).
    Contrast and size vary per finding; severity words in the report follow them (e.g. "subtle", "dense", "small",
    "large", "mild", "marked"). Anatomy, findings and report depend on ``(seed, index)`` only, not on the image size.

    Args:
        image_size: output size, an int (square) or ``(H, W)``; each side in [64, 4096].
        seed: non-negative int; ``generate_case(index)`` is a pure function of ``(seed, index)``.
        finding_probs: relative weights of the findings, ``{name: weight >= 0}``; names that are not given get
            weight 0. ``None``: all findings equally likely.
        max_findings: the most findings in one abnormal case, in [1, 7]; an abnormal case draws 1..max_findings
            distinct findings (fewer are more likely).
        normal_fraction: probability in [0, 1] that a case has no finding.

    Example::

        >>> gen = SyntheticCXRGenerator(image_size=256, seed=0)
        >>> case = gen.generate_case(3)
        >>> case["image"].shape, case["image"].dtype
        ((256, 256), dtype('uint8'))
        >>> sorted(case["labels"]) == sorted(SYNTHETIC_FINDINGS)
        True

    ``generate_case`` returns a dict with ``image`` (``uint8 [H, W]``), ``report`` (str), ``findings`` (a list of
    dicts: ``name``, ``box`` ``[x, y, w, h]`` (the union box), ``boxes`` (one box per connected side: two for
    bilateral findings), ``mask`` (bool ``[H, W]``), ``phrase`` (location-bearing, a substring of the report),
    ``phrase_location_free``, ``laterality`` ("left", "right", "bilateral" or "none"), ``zone`` ("upper",
    "middle", "lower" or "none"), ``severity``, ``area``), ``labels`` (``{name: 0 or 1}``), ``sections``
    (``{"findings": str, "impression": str}``), ``view`` ("PA" or "AP"), ``pixel_spacing`` (mm, ``(row, col)``),
    ``anatomy`` (``lung_boxes`` ``{"right": box, "left": box}``, ``heart_box`` (the visible cardiac silhouette),
    ``lung_mask``, ``heart_mask``, ``body_mask`` (bool ``[H, W]``), ``cardiothoracic_ratio``, ``zoom``,
    ``rotation_deg``) and ``index``.
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = 256,
        seed: int = 0,
        finding_probs: Mapping[str, float] | None = None,
        max_findings: int = 3,
        normal_fraction: float = 0.2,
    ) -> None:
        if isinstance(image_size, Integral) and not isinstance(image_size, bool):
            size = (int(image_size), int(image_size))
        elif isinstance(image_size, Sequence) and not isinstance(image_size, str) and len(image_size) == 2:
            size = tuple(_check_int("image_size[i]", s, 64, 4096) for s in image_size)
        else:
            raise TypeError(f"image_size must be an int or a pair (H, W) of ints, got {image_size!r}.")
        for s in size:
            if not 64 <= s <= 4096:
                raise ValueError(f"image_size must be in [64, 4096] per side, got {image_size!r}.")
        self.image_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.seed = _check_int("seed", seed, 0)
        self.max_findings = _check_int("max_findings", max_findings, 1, len(SYNTHETIC_FINDINGS))
        if isinstance(normal_fraction, bool) or not isinstance(normal_fraction, Real):
            raise TypeError(f"normal_fraction must be a float, got {type(normal_fraction).__name__}.")
        if not 0.0 <= float(normal_fraction) <= 1.0:
            raise ValueError(f"normal_fraction must be in [0, 1], got {normal_fraction}.")
        self.normal_fraction = float(normal_fraction)
        if finding_probs is None:
            weights = np.ones(len(SYNTHETIC_FINDINGS))
        else:
            if not isinstance(finding_probs, Mapping):
                raise TypeError(f"finding_probs must be a mapping name -> weight, got {type(finding_probs).__name__}.")
            unknown = sorted(set(finding_probs) - set(SYNTHETIC_FINDINGS))
            if unknown:
                raise ValueError(f"finding_probs keys must be among {SYNTHETIC_FINDINGS}, got unknown {unknown}.")
            weights = np.zeros(len(SYNTHETIC_FINDINGS))
            for i, name in enumerate(SYNTHETIC_FINDINGS):
                if name in finding_probs:
                    w = finding_probs[name]
                    if isinstance(w, bool) or not isinstance(w, Real) or not math.isfinite(w) or w < 0:
                        raise ValueError(f"finding_probs[{name!r}] must be a finite number >= 0, got {w!r}.")
                    weights[i] = float(w)
            if weights.sum() <= 0 and self.normal_fraction < 1.0:
                raise ValueError("finding_probs must give at least one finding a positive weight (or set "
                                 f"normal_fraction=1), got {dict(finding_probs)}.")
        self.finding_weights = {n: float(w) for n, w in zip(SYNTHETIC_FINDINGS, weights)}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(image_size={self.image_size}, seed={self.seed}, "
                f"max_findings={self.max_findings}, normal_fraction={self.normal_fraction})")

    # ------------------------------------------------------------------ sampling
    def _sample_names(self, rng: np.random.Generator) -> list[str]:
        normal = rng.random() < self.normal_fraction
        names = [n for n in SYNTHETIC_FINDINGS if self.finding_weights[n] > 0]
        if normal or not names:
            return []
        k_max = min(self.max_findings, len(names))
        k_p = 0.5 ** np.arange(k_max)
        k = 1 + int(rng.choice(k_max, p=k_p / k_p.sum()))
        w = np.array([self.finding_weights[n] for n in names])
        chosen = rng.choice(len(names), size=k, replace=False, p=w / w.sum())
        return [names[i] for i in sorted(chosen)]

    def _sample_anatomy(self, rng: np.random.Generator, cardiomegaly: bool) -> dict[str, Any]:
        u = rng.uniform
        view = "PA" if rng.random() < 0.7 else "AP"
        an: dict[str, Any] = {"view": view}
        an["zoom"] = u(0.80, 1.06)
        an["shift"] = (u(-0.08, 0.08), u(-0.08, 0.10))
        an["angle"] = math.radians(u(-5.0, 5.0))
        an["mid_u"] = u(-0.04, 0.04)
        half_width = 0.74 * u(0.86, 1.14)
        height = 1.32 * u(0.86, 1.14) * (0.95 if view == "AP" else 1.0)
        apex_v = -0.80 + u(-0.06, 0.06)
        dome_r = u(0.68, 0.80)
        lungs = []
        for side in range(2):
            lungs.append(
                _Lung(
                    sign=_SIDE_SIGN[side],
                    medial=u(0.07, 0.12),
                    lateral=half_width * u(0.95, 1.02),
                    apex_v=apex_v + u(-0.03, 0.03),
                    height=height * u(0.97, 1.03),
                    dome_s=min(dome_r + (u(0.0, 0.07) if side == 1 else 0.0), 0.88),
                    dome_t=u(0.30, 0.50),
                    apex_t=u(0.35, 0.50),
                    apex_k=u(0.28, 0.42),
                    medial_drop=u(0.03, 0.10),
                )
            )
        an["lungs"] = lungs
        an["half_width"] = half_width
        # heart: a rotated ellipse whose horizontal extent sets the cardiothoracic ratio
        ctr = u(0.54, 0.66) if cardiomegaly else u(0.39, 0.48)
        if view == "AP":
            ctr = min(ctr * 1.04, 0.49) if not cardiomegaly else ctr * 1.04
        thorax = lungs[0].lateral + lungs[1].lateral
        extent = ctr * thorax / 2.0
        phi = math.radians(u(18.0, 38.0))
        ratio = u(0.72, 0.88)
        ax = extent / math.sqrt(math.cos(phi) ** 2 + (ratio * math.sin(phi)) ** 2)
        bx = ratio * ax
        vext = math.sqrt((ax * math.sin(phi)) ** 2 + (bx * math.cos(phi)) ** 2)
        left = lungs[1]
        dome_v = left.apex_v + left.dome_s * left.height
        right_frac = u(0.24, 0.38)
        an["heart"] = {
            "u": an["mid_u"] + extent * (1.0 - 2.0 * right_frac),
            "v": dome_v + left.medial_drop * left.height + u(0.0, 0.06) - vext * u(0.80, 0.92),
            "a": ax, "b": bx, "phi": phi, "extent": extent, "vext": vext,
        }
        an["ctr"] = 2.0 * extent / thorax
        an["medi_w"] = u(0.07, 0.105)
        an["trachea_w"] = u(0.022, 0.032)
        an["carina_v"] = apex_v + u(0.28, 0.36) * height
        an["body_w"] = half_width * u(1.12, 1.26)
        an["body_top"] = apex_v - u(0.12, 0.30)
        an["neck_w"] = u(0.18, 0.26)
        an["shoulder"] = u(0.25, 0.45)
        an["clavicle_v"] = apex_v + u(0.02, 0.12) - (0.06 if view == "AP" else 0.0)
        an["clavicle_th"] = u(0.026, 0.04)
        an["rib_n"] = u(9.0, 10.5)
        an["rib_droop"] = u(0.30, 0.45)
        an["rib_wobble"] = u(0.0, 0.25)
        an["rib_wobble_f"] = u(6.0, 14.0)
        an["rib_wobble_p"] = u(0.0, 2 * math.pi)
        an["rib_gain"] = u(0.03, 0.06)
        an["bubble"] = rng.random() < 0.75
        an["bubble_r"] = (u(0.06, 0.10), u(0.035, 0.06))
        an["mm_per_unit"] = u(185.0, 215.0)
        an["exposure"] = {
            "gamma": u(0.8, 1.25), "gain": u(0.9, 1.1), "offset": u(-0.04, 0.04),
            "tilt": (u(-0.08, 0.08), u(-0.06, 0.06)), "blur": u(0.45, 0.9), "noise": u(0.008, 0.025),
            "soft": u(0.30, 0.40),
        }
        return an

    # ------------------------------------------------------------------ anatomy fields
    def _lung_fields(self, cv: _Canvas, an: dict[str, Any]) -> dict[str, Any]:
        mid = an["mid_u"]
        lung_d = np.full((cv.h, cv.w), -1.0, dtype=np.float32)
        sides = []
        for lung in an["lungs"]:
            a_lo, a_hi = lung.medial - 0.02, lung.lateral + 0.02
            u0, u1 = sorted((mid + lung.sign * a_lo, mid + lung.sign * a_hi))
            win = cv.window(u0, u1, lung.apex_v - 0.03, lung.apex_v + lung.height + 0.02)
            rec: dict[str, Any] = {"lung": lung, "win": win}
            if win is not None:
                a = lung.sign * (cv.u[win] - mid)
                d, t, s = lung.margin(a, cv.v[win])
                rec.update(a=a, d=d, t=t, s=s)
                np.maximum(lung_d[win], d, out=lung_d[win])
            sides.append(rec)
        return {"lung_d": lung_d, "sides": sides}

    def _heart_field(self, cv: _Canvas, an: dict[str, Any]) -> tuple[np.ndarray, tuple[slice, slice] | None]:
        h = an["heart"]
        soft = np.zeros((cv.h, cv.w), dtype=np.float32)
        win = cv.window(h["u"] - h["extent"] - 0.02, h["u"] + h["extent"] + 0.02, h["v"] - h["vext"] - 0.02,
                        h["v"] + h["vext"] + 0.02)
        if win is not None:
            du, dv = cv.u[win] - h["u"], cv.v[win] - h["v"]
            c, s = math.cos(h["phi"]), math.sin(h["phi"])
            p = (du * c + dv * s) * (1.0 / h["a"])
            q = (dv * c - du * s) * (1.0 / h["b"])
            r = np.sqrt(p * p + q * q)
            soft[win] = cv.soft((1.0 - r) * h["b"], 1.2)
        return soft, win

    @staticmethod
    def _visible_heart(ctx: dict[str, Any]) -> np.ndarray:
        """The cardiac silhouette: the heart above the diaphragm (per column, the lowest lung row, interpolated)."""
        cv = ctx["cv"]
        heart = (ctx["heart"] > 0.5) & (ctx["body"] > 0.5)
        lung_any = ctx["lung_d"] > 0
        has = lung_any.any(axis=0)
        if has.any():
            cols = np.arange(cv.w)
            bottom = cv.h - 1 - np.argmax(lung_any[::-1], axis=0)
            bottom = np.interp(cols, cols[has], bottom[has])
            heart &= np.arange(cv.h)[:, None] <= bottom[None, :]
        return heart

    # ------------------------------------------------------------------ findings
    def _aerated(self, ctx: dict[str, Any], side: int, win: tuple[slice, slice]) -> np.ndarray:
        """Visible lung of one side: inside the lung, outside the heart, any pneumothorax and any effusion."""
        lung = (ctx["lung_side"][win] == side) & (ctx["lung_d"][win] > 0)
        return lung & (ctx["heart"][win] < 0.5) & ~ctx["blocked"][win]

    def _zone_of(self, lung: _Lung, cv: _Canvas, mask: np.ndarray) -> str:
        rows, cols = np.nonzero(mask)
        r, c = int(round(rows.mean())), int(round(cols.mean()))
        s = (float(cv.v[r, c]) - lung.apex_v) / lung.height / lung.dome_s
        return _ZONES[min(max(int(s * 3.0), 0), 2)]

    def _pick_point(
        self, rng: np.random.Generator, ctx: dict[str, Any], side: int, zone: str, margin: float,
        t_range: tuple[float, float] = (0.25, 0.80),
    ) -> tuple[float, float] | None:
        an, lung = ctx["an"], ctx["an"]["lungs"][side]
        h = an["heart"]
        for _ in range(24):
            s = rng.uniform(*_ZONE_S[zone]) * lung.dome_s
            pu, pv = lung.point(rng.uniform(*t_range), s, an["mid_u"])
            if lung.scalar_margin(pu, pv, an["mid_u"]) < margin:
                continue
            du, dv = pu - h["u"], pv - h["v"]
            c, sn = math.cos(h["phi"]), math.sin(h["phi"])
            if ((du * c + dv * sn) / h["a"]) ** 2 + ((dv * c - du * sn) / h["b"]) ** 2 < 1.15**2:
                continue
            cols, rows = ctx["cv"].to_pixel(pu, pv)
            if 0 <= rows < ctx["cv"].h and 0 <= cols < ctx["cv"].w:
                return pu, pv
        return None

    def _focal(
        self, name: str, rng: np.random.Generator, ctx: dict[str, Any], side: int, zone: str
    ) -> tuple[tuple[slice, slice], np.ndarray, list[_Layer], dict[str, Any]] | None:
        """Draw a consolidation, nodule or atelectasis in one lung zone: (window, window mask, layers, spec) or None."""
        cv, an = ctx["cv"], ctx["an"]
        layers: list[_Layer] = []
        spec: dict[str, Any] = {}
        if ctx["sides"][side]["win"] is None:
            return None
        if name == "Consolidation":
            radius = rng.uniform(0.07, 0.16)
            pt = self._pick_point(rng, ctx, side, zone, 0.3 * radius)
            if pt is None:
                return None
            win = cv.window(pt[0] - 2.4 * radius, pt[0] + 2.4 * radius, pt[1] - 2.4 * radius, pt[1] + 2.4 * radius)
            if win is None:
                return None
            field = np.zeros(cv.u[win].shape, dtype=np.float32)
            for _ in range(int(rng.integers(3, 6))):
                cu, cvv = pt[0] + rng.normal(0, 0.45 * radius), pt[1] + rng.normal(0, 0.45 * radius)
                sg = radius * rng.uniform(0.35, 0.6)
                dist2 = (cv.u[win] - cu) ** 2 + (cv.v[win] - cvv) ** 2
                field += rng.uniform(0.6, 1.0) * np.exp(dist2 * (-0.5 / (sg * sg)))
            field *= 1.0 / max(float(field.max()), 1e-6)
            field *= 1.0 + 0.25 * ctx["noise"][win]
            opac = np.clip((field - 0.2) * (1.0 / 0.5), 0.0, 1.0)
            opac *= opac * ctx["lung_soft"][win] * (0.8 + 0.2 * ctx["noise"][win[0], win[1]][::-1, ::-1])
            m = (field > 0.45) & self._aerated(ctx, side, win)
            fill = rng.uniform(0.35, 0.8)
            layers += [("fill", win, opac * fill), ("add", win, opac * 0.03)]
            sev = ("patchy", "focal", "ill-defined", "")[int(rng.integers(4))]
            sev = "subtle" if fill < 0.5 else ("dense" if fill > 0.68 else sev)
            spec["severity"] = sev
        elif name == "Nodule":
            radius = max(rng.uniform(0.024, 0.05), 2.5 * cv.px)
            pt = self._pick_point(rng, ctx, side, zone, radius + 3 * cv.px)
            if pt is None:
                return None
            win = cv.window(pt[0] - radius - 0.02, pt[0] + radius + 0.02, pt[1] - radius - 0.02, pt[1] + radius + 0.02)
            if win is None:
                return None
            rho = np.sqrt((cv.u[win] - pt[0]) ** 2 + (cv.v[win] - pt[1]) ** 2)
            sphere = np.sqrt(np.clip(1.0 - (rho / radius) ** 2, 0.0, 1.0))
            disk = cv.soft(radius - rho, 0.8)
            layers.append(("add", win, disk * (0.55 + 0.45 * sphere) * rng.uniform(0.10, 0.26)))
            m = (rho < radius) & self._aerated(ctx, side, win)
            spec["size_mm"] = int(round(2 * radius * an["mm_per_unit"]))
            sev = ("", "rounded", "well-defined")[int(rng.integers(3))]
            spec["severity"] = "small" if spec["size_mm"] < 12 else sev
        else:
            pt = self._pick_point(rng, ctx, side, zone, 0.03, (0.3, 0.75))
            if pt is None:
                return None
            length = rng.uniform(0.12, 0.24)
            thick = max(rng.uniform(0.016, 0.03), 2.2 * cv.px)
            ang = math.radians(rng.uniform(-25.0, 25.0))
            curv = rng.uniform(-1.5, 1.5)
            ext = length / 2 + thick
            win = cv.window(pt[0] - ext, pt[0] + ext, pt[1] - ext, pt[1] + ext)
            if win is None:
                return None
            du, dv = cv.u[win] - pt[0], cv.v[win] - pt[1]
            along = du * math.cos(ang) + dv * math.sin(ang)
            across = dv * math.cos(ang) - du * math.sin(ang) - curv * along * along
            band = cv.soft(thick / 2 - np.abs(across), 0.8) * cv.soft(length / 2 - np.abs(along), 3.0)
            band *= ctx["lung_soft"][win]
            m = (band > 0.5) & self._aerated(ctx, side, win)
            layers += [("fill", win, band * rng.uniform(0.35, 0.75)), ("add", win, band * 0.02)]
            spec["severity"] = ("", "mild", "minimal", "streaky")[int(rng.integers(4))]
        return win, m, layers, spec

    def _finding(self, name: str, rng: np.random.Generator, ctx: dict[str, Any]) -> dict[str, Any] | None:
        cv, an = ctx["cv"], ctx["an"]
        full = (cv.h, cv.w)
        mask = np.zeros(full, dtype=bool)
        comps: list[np.ndarray] = []
        layers: list[_Layer] = []
        spec: dict[str, Any] = {"name": name, "laterality": "none", "zone": "none", "severity": ""}
        min_area = max(6, int(2e-4 * cv.h * cv.w))

        def focal_side_zone(zones: Sequence[str], p: Sequence[float]) -> tuple[int, str]:
            free = [(s, z) for s in range(2) for z in zones if (s, z) not in ctx["used"]]
            pool = free or [(s, z) for s in range(2) for z in zones]
            pw = np.array([p[zones.index(z)] for _, z in pool])
            side, zone = pool[int(rng.choice(len(pool), p=pw / pw.sum()))]
            return side, zone

        if name == "Cardiomegaly":
            heart_mask = ctx["heart_visible"]
            mask |= heart_mask
            comps.append(heart_mask)
            spec["severity"] = "mild" if an["ctr"] < 0.58 else ("moderate" if an["ctr"] < 0.63 else "marked")
        elif name == "Pneumothorax":
            sides = [s for s in range(2) if ctx["sides"][s]["win"] is not None]
            if not sides:
                return None
            side = sides[int(rng.integers(len(sides)))]
            rec, lung = ctx["sides"][side], ctx["sides"][side]["lung"]
            win = rec["win"]
            size = ("small", "moderate", "large")[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
            f = rng.uniform(*{"small": (0.84, 0.90), "moderate": (0.76, 0.84), "large": (0.64, 0.76)}[size])
            anchor_a = lung.medial + rng.uniform(0.05, 0.25) * (lung.lateral - lung.medial)
            anchor_v = lung.apex_v + rng.uniform(0.80, 0.95) * lung.height
            a2 = anchor_a + (rec["a"] - anchor_a) * (1.0 / f)
            v2 = anchor_v + (cv.v[win] - anchor_v) * (1.0 / f)
            d2 = lung.margin(a2, v2)[0] * f
            inside = rec["d"] > 0
            gap = cv.soft(rec["d"]) * np.clip(0.5 - d2 * (1.0 / (1.2 * cv.px)), 0.0, 1.0)
            line = np.exp(-((d2 * (1.0 / (0.9 * cv.px))) ** 2)) * inside
            m = (gap > 0.5) & (ctx["lung_side"][win] == side)
            mask[win] = m
            ctx["blocked"][win] |= m
            layers += [("gap", win, gap * rng.uniform(0.03, 0.06)), ("add", win, line * rng.uniform(0.06, 0.12)),
                       ("novessel", win, gap)]
            comps.append(mask.copy())
            spec.update(laterality=_SIDE_NAMES[side], zone="upper", severity=size)
            ctx["ptx_side"] = side
        elif name == "Pleural Effusion":
            options = [0, 1, 2] if ctx.get("ptx_side") is None else [1 - ctx["ptx_side"]]
            choice = options[int(rng.choice(len(options), p=[0.35, 0.35, 0.3] if len(options) == 3 else None))]
            sides = [0, 1] if choice == 2 else [choice]
            size = ("small", "moderate", "large")[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
            fill = rng.uniform(0.65, 0.95)
            drawn_sides: list[int] = []
            for side in sides:
                rec = ctx["sides"][side]
                if rec["win"] is None:
                    continue
                lung, win = rec["lung"], rec["win"]
                lift = {"small": rng.uniform(0.07, 0.14), "moderate": rng.uniform(-0.10, 0.02),
                        "large": rng.uniform(-0.32, -0.16)}[size]
                level = lung.dome_s + lift - rng.uniform(0.05, 0.12) * np.clip(rec["t"], 0.0, 1.0) ** 2
                below = (rec["s"] - level) * lung.height
                fluid = np.clip(0.5 + below * (1.0 / (5.0 * cv.px)), 0.0, 1.0)
                fluid *= cv.soft(rec["d"]) * (0.75 + 0.25 * np.clip(below * (1.0 / 0.12), 0.0, 1.0))
                m = (fluid > 0.5) & self._aerated(ctx, side, win)
                if _add_component(mask, comps, full, win, m, min_area):
                    drawn_sides.append(side)
                    ctx["blocked"][win] |= fluid > 0.05
                    layers.append(("fill", win, fluid * fill))
                    layers.append(("add", win, fluid * 0.04))
            if not comps:
                return None
            lat = "bilateral" if len(drawn_sides) == 2 else _SIDE_NAMES[drawn_sides[0]]
            spec.update(laterality=lat, zone="lower", severity=size)
        elif name == "Edema":
            c = rng.uniform(0.35, 0.75)
            drawn_sides = []
            for side in range(2):
                rec = ctx["sides"][side]
                if rec["win"] is None:
                    continue
                lung, win = rec["lung"], rec["win"]
                ca = lung.medial + rng.uniform(0.04, 0.14)
                cvv = lung.apex_v + rng.uniform(0.40, 0.55) * lung.height
                sa, sv = rng.uniform(0.13, 0.21), rng.uniform(0.17, 0.27)
                g = np.exp(-0.5 * (((rec["a"] - ca) / sa) ** 2 + ((cv.v[win] - cvv) / sv) ** 2))
                haze = g * (0.75 + 0.25 * ctx["noise"][win]) * cv.soft(rec["d"], 2.0)
                m = (g > 0.45) & self._aerated(ctx, side, win)
                if _add_component(mask, comps, full, win, m, min_area):
                    drawn_sides.append(side)
                    layers += [("fill", win, haze * c), ("novessel", win, 0.5 * g)]
            if not comps:
                return None
            # normally bilateral; when one lung's haze is out of view, the side that holds it
            lat = "bilateral" if len(drawn_sides) == 2 else _SIDE_NAMES[drawn_sides[0]]
            spec.update(laterality=lat, zone="middle",
                        severity="mild" if c < 0.48 else ("moderate" if c < 0.62 else "severe"))
        elif name in ("Consolidation", "Nodule", "Atelectasis"):
            zones_p = (0.15, 0.4, 0.45) if name == "Atelectasis" else (1.0, 1.0, 1.0)
            drawn = None
            for _ in range(4):
                side, zone = focal_side_zone(_ZONES, zones_p)
                drawn = self._focal(name, rng, ctx, side, zone)
                if drawn is not None and int(drawn[1].sum()) >= min_area:
                    break
                drawn = None
            if drawn is None:
                return None
            win, m, new_layers, extra = drawn
            layers += new_layers
            spec.update(extra)
            mask[win] = m
            comps.append(mask)
            spec.update(laterality=_SIDE_NAMES[side], zone=self._zone_of(ctx["an"]["lungs"][side], cv, mask))
            ctx["used"].add((side, spec["zone"]))
        else:  # pragma: no cover - names are validated in __init__
            raise ValueError(f"unknown finding {name!r}.")
        if mask.sum() < min_area:
            return None
        phrase, free, plural = describe_finding(spec, ctx["txt_rng"])
        out = {
            "name": name,
            "box": _box(mask),
            "boxes": [_box(c) for c in comps if c.any()],
            "mask": mask,
            "phrase": phrase,
            "phrase_location_free": free,
            "laterality": spec["laterality"],
            "zone": spec["zone"],
            "severity": spec["severity"],
            "area": int(mask.sum()),
            "plural": plural,
            "_layers": layers,
        }
        if "size_mm" in spec:
            out["size_mm"] = spec["size_mm"]
        return out

    # ------------------------------------------------------------------ case
    def generate_case(self, index: int) -> dict[str, Any]:
        """
        Draw case ``index`` (a pure function of ``(seed, index)``; uses ``np.random.default_rng([seed, index])``).

        Args:
            index: non-negative int.

        Returns:
            the case dict described in the class docstring.

        Raises:
            TypeError: ``index`` is not an int.
            ValueError: ``index`` is negative.
        """
        index = _check_int("index", index, 0)
        # one root stream per case, split into shape / texture / text streams so that the anatomy, the findings and
        # the report do not depend on the image size
        rng, tex_rng, txt_rng = np.random.default_rng([self.seed, index]).spawn(3)
        names = self._sample_names(rng)
        an = self._sample_anatomy(rng, "Cardiomegaly" in names)
        cv = _Canvas(self.image_size[0], self.image_size[1], an["zoom"], an["shift"], an["angle"])
        ctx: dict[str, Any] = {"cv": cv, "an": an, "used": set(), "ptx_side": None, "txt_rng": txt_rng}
        lf = self._lung_fields(cv, an)
        ctx["sides"], ctx["lung_d"] = lf["sides"], lf["lung_d"]
        ctx["lung_soft"] = cv.soft(lf["lung_d"])
        lung_side = np.full((cv.h, cv.w), -1, dtype=np.int8)
        for side, rec in enumerate(lf["sides"]):
            if rec["win"] is not None:
                sel = (rec["d"] > 0) & (rec["d"] >= lf["lung_d"][rec["win"]])
                lung_side[rec["win"]][sel] = side
        ctx["lung_side"] = lung_side
        ctx["heart"], _ = self._heart_field(cv, an)
        ctx["body"] = self._body(cv, an)
        ctx["heart_visible"] = self._visible_heart(ctx)
        ctx["blocked"] = np.zeros((cv.h, cv.w), dtype=bool)
        ctx["noise"] = self._smooth_noise(tex_rng, (cv.h, cv.w), 24)

        findings = []
        for name in sorted(names, key=_ORDER.index):
            f = self._finding(name, rng, ctx)
            if f is not None:
                findings.append(f)
        image = self._render(tex_rng, ctx, findings)
        present = {f["name"] for f in findings}
        report, sec_findings, sec_impression = compose_report(
            findings, [n for n in SYNTHETIC_FINDINGS if n not in present], an["view"], txt_rng
        )
        spacing = an["mm_per_unit"] * cv.px
        lung_boxes = {}
        for side, rec in enumerate(lf["sides"]):
            full = np.zeros((cv.h, cv.w), dtype=bool)
            if rec["win"] is not None:
                full[rec["win"]] = rec["d"] > 0
            lung_boxes[_SIDE_NAMES[side]] = _box(full) if full.any() else [0, 0, 0, 0]
        heart_mask = ctx["heart_visible"]
        for f in findings:
            f.pop("_layers")
            f.pop("plural")
        return {
            "index": index,
            "image": image,
            "report": report,
            "sections": {"findings": sec_findings, "impression": sec_impression},
            "findings": findings,
            "labels": {n: int(n in present) for n in SYNTHETIC_FINDINGS},
            "view": an["view"],
            "pixel_spacing": (round(spacing, 4), round(spacing, 4)),
            "anatomy": {
                "lung_boxes": lung_boxes,
                "heart_box": _box(heart_mask) if heart_mask.any() else [0, 0, 0, 0],
                "lung_mask": ctx["lung_d"] > 0,
                "heart_mask": heart_mask,
                "body_mask": ctx["body"] > 0.5,
                "cardiothoracic_ratio": round(an["ctr"], 4),
                "zoom": round(an["zoom"], 4),
                "rotation_deg": round(math.degrees(an["angle"]), 3),
            },
        }

    # ------------------------------------------------------------------ rendering
    @staticmethod
    def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
        """Smooth unit-variance noise: a random grid of ``cells`` per shorter side, bilinearly upsampled (matmuls)."""
        gh, gw = (max(2, int(math.ceil(cells * n / min(shape)))) for n in shape)
        grid = ndimage.gaussian_filter(rng.standard_normal((gh, gw), dtype=np.float32), 0.6, mode="wrap")
        out = _interp_matrix(shape[0], gh, False) @ grid @ _interp_matrix(shape[1], gw, False).T
        return out * (1.0 / max(float(out.std()), 1e-6))

    @staticmethod
    def _body(cv: _Canvas, an: dict[str, Any]) -> np.ndarray:
        du = cv.u - an["mid_u"]
        bu = du * (1.0 / an["body_w"])
        bu2 = bu * bu
        side = (1.0 - bu2 * bu2) * an["body_w"]  # flanks, a superellipse in u
        top = cv.v - (an["body_top"] + an["shoulder"] * bu2)  # sloping shoulders
        d = np.minimum(side, top)
        neck = np.minimum(an["neck_w"] - np.abs(du), an["body_top"] + 0.3 - cv.v)
        return cv.soft(np.maximum(d, neck), 2.5)

    def _render(self, rng: np.random.Generator, ctx: dict[str, Any], findings: list[dict[str, Any]]) -> np.ndarray:
        cv, an = ctx["cv"], ctx["an"]
        mid = an["mid_u"]
        ex = an["exposure"]
        body = ctx["body"]
        bu = np.clip(1.0 - ((cv.u - mid) * (1.0 / an["body_w"])) ** 2, 0.0, 1.0)
        img = 0.04 + body * (ex["soft"] + 0.22 * np.sqrt(bu))

        # mediastinum (great vessels), aortic knob, trachea; the heart is soft tissue that displaces lung
        h = an["heart"]
        heart = ctx["heart"]
        top_v = float(cv.v.min()) - 0.1
        win = cv.window(mid - 0.2, mid + 0.2, top_v, h["v"] + 0.05)
        if win is not None:
            du = np.abs(cv.u[win] - mid)
            vv = cv.v[win]
            medi = cv.soft(an["medi_w"] - du, 2.0) * cv.soft(h["v"] - vv, 2.0) * body[win]
            knob_u, knob_v = mid + an["medi_w"] + 0.015, h["v"] - h["vext"] - 0.05
            knob = cv.soft(0.05 - np.sqrt((cv.u[win] - knob_u) ** 2 + (vv - knob_v) ** 2), 2.0)
            medi = np.maximum(medi, knob)
            img[win] += 0.05 * medi
            trach = cv.soft(an["trachea_w"] - du, 1.5) * cv.soft(an["carina_v"] - vv, 3.0) * body[win]
            img[win] -= 0.13 * trach
        else:
            medi = None

        # lungs: air with a soft peripheral falloff; heart and mediastinum displace it
        lung_soft = ctx["lung_soft"]
        air = np.zeros_like(img)
        for rec in ctx["sides"]:
            if rec["win"] is None:
                continue
            w = rec["win"]
            prof = np.sqrt(np.clip(rec["d"] * (1.0 / 0.12), 0.3, 1.0))
            air[w] = np.maximum(air[w], _RHO_AIR * cv.soft(rec["d"]) * prof * (1.0 - 0.88 * heart[w]))
        if medi is not None:
            air[win] *= 1.0 - 0.8 * medi
        img -= air

        # vessels: ridges of an angularly varying, radially smooth noise around each hilum
        novessel = np.zeros_like(img)
        for f in findings:
            for kind, w, arr in f["_layers"]:
                if kind == "novessel":
                    novessel[w] = np.maximum(novessel[w], arr)
        n_theta, n_r, r_max = 96, 14, 1.4
        table = rng.standard_normal((2, n_theta + 1, n_r + 1), dtype=np.float32)
        table[:, n_theta] = table[:, 0]  # wrap in angle
        for side, rec in enumerate(ctx["sides"]):
            if rec["win"] is None:
                continue
            w, lung = rec["win"], rec["lung"]
            ha, hv = lung.medial + 0.05, lung.apex_v + 0.45 * lung.height
            da, dv = rec["a"] - ha, cv.v[w] - hv
            r = np.sqrt(da * da + dv * dv)
            # bilinear lookup of a coarse (angle, radius) noise: its zero lines run mostly radially
            ft = (np.arctan2(dv, da) + math.pi) * (n_theta / (2 * math.pi))
            fr = np.minimum(r * (n_r / r_max), n_r - 1e-3)
            it, ir = ft.astype(np.int32), fr.astype(np.int32)
            it = np.minimum(it, n_theta - 1)
            wt, wr = ft - it, fr - ir
            tab = table[side]
            lo = tab[it, ir] * (1.0 - wr) + tab[it, ir + 1] * wr
            hi = tab[it + 1, ir] * (1.0 - wr) + tab[it + 1, ir + 1] * wr
            val = np.abs(lo + (hi - lo) * wt)
            width = 0.22 * 0.3 / (r + 0.3)
            ridge = np.clip(1.0 - val / width, 0.0, 1.0)
            ves = ridge * ridge * np.exp(-r * (1.0 / 0.5)) * 0.32
            ves += 0.07 * np.exp(-(r * r) * (1.0 / (2 * 0.06**2)))  # hilar shadow
            ves *= cv.soft(rec["d"], 1.5) * (1.0 - novessel[w]) * (1.0 - 0.6 * heart[w])
            img[w] += ves * (lung_soft[w] > 0)

        # findings
        for f in findings:
            for kind, w, arr in f["_layers"]:
                if kind == "fill":
                    img[w] += arr * air[w]
                elif kind == "add":
                    img[w] += arr
                elif kind == "gap":
                    img[w] -= arr

        # gastric bubble under the left hemidiaphragm
        left = an["lungs"][1]
        if an["bubble"]:
            bt = 0.45
            bu_, bv_ = left.point(bt, left.dome_s + 0.02, mid)
            rx, ry = an["bubble_r"]
            bv_ += ry + 0.03
            bwin = cv.window(bu_ - rx - 0.02, bu_ + rx + 0.02, bv_ - ry - 0.02, bv_ + ry + 0.02)
            if bwin is not None:
                e = np.sqrt(((cv.u[bwin] - bu_) / rx) ** 2 + ((cv.v[bwin] - bv_) / ry) ** 2)
                img[bwin] -= 0.12 * cv.soft((1.0 - e) * ry, 1.5) * (1.0 - lung_soft[bwin]) * (1.0 - heart[bwin])

        # bones: spine, ribs (posterior and faint anterior), clavicles
        win = cv.window(mid - 0.1, mid + 0.1, top_v, float(cv.v.max()) + 0.1)
        if win is not None:
            vv = cv.v[win]
            period = an["lungs"][0].height / 11.0
            verte = 0.8 + 0.2 * np.clip(3.0 * np.cos(vv * (2 * math.pi / period)), -1.0, 1.0)
            img[win] += 0.04 * cv.soft(0.065 - np.abs(cv.u[win] - mid), 1.5) * verte * body[win]
        for rec in ctx["sides"]:
            lung = rec["lung"]
            a_hi = lung.lateral + 0.05
            u0, u1 = sorted((mid, mid + lung.sign * a_hi))
            q0, qh = lung.apex_v - 0.08, lung.height * 1.05
            win = cv.window(u0, u1, lung.apex_v - 0.35, lung.apex_v + lung.height + 0.1)
            if win is None:
                continue
            a = lung.sign * (cv.u[win] - mid)
            vv = cv.v[win]
            an_ = a * (1.0 / lung.lateral)
            q = vv + 0.12 * an_ - an["rib_droop"] * an_ * an_
            qn = np.clip((q - q0) * (1.0 / qh), 0.0, 1.2)
            g = an["rib_n"] * qn**0.85 + an["rib_wobble"] * np.sin(qn * an["rib_wobble_f"] + an["rib_wobble_p"])
            rib = np.sqrt(np.clip((np.cos(2 * math.pi * g) - 0.25) * (1.0 / 0.75), 0.0, 1.0))
            inside = cv.soft(lung.lateral + 0.03 - a, 2.0) * cv.soft(a, 1.0) * cv.soft(q - q0, 2.0) * cv.soft(
                q0 + qh - q, 3.0)
            q2 = vv + 0.45 * a
            g2 = 6.5 * (q2 - q0) * (1.0 / qh)
            rib2 = np.clip((np.cos(2 * math.pi * g2) - 0.4) * (1.0 / 0.6), 0.0, 1.0) * cv.soft(a - 0.25, 6.0)
            clav_v = an["clavicle_v"] - 0.25 * a + 0.15 * a * a
            clav = cv.soft(an["clavicle_th"] / 2 - np.abs(vv - clav_v), 1.0) * cv.soft(a - 0.03, 1.0) * cv.soft(
                0.85 - a, 3.0)
            ribs = an["rib_gain"] * (rib + 0.35 * rib2) * inside * (0.4 + 0.6 * lung_soft[win])
            img[win] += (ribs + 0.13 * clav) * body[win]

        # exposure, blur, noise
        img = np.clip(img, 0.0, None)
        xs = (np.arange(cv.w, dtype=np.float32) / cv.w - 0.5) * ex["tilt"][0]
        ys = (np.arange(cv.h, dtype=np.float32) / cv.h - 0.5) * ex["tilt"][1]
        img *= (1.0 + xs[None, :] + ys[:, None]) * ex["gain"]
        img = ndimage.gaussian_filter(img, ex["blur"] * min(cv.h, cv.w) / 256.0)
        noise = rng.standard_normal(img.shape, dtype=np.float32)
        img += noise * (ex["noise"] * (0.4 + img))
        # gamma, offset and quantisation through a lookup table
        lut = np.clip((np.linspace(0.0, 1.0, 4096) ** ex["gamma"] + ex["offset"]) * 255.0 + 0.5, 0, 255)
        return lut.astype(np.uint8)[(np.clip(img, 0.0, 1.0) * 4095.0).astype(np.int32)]
