"""The synthetic data set's scenes: label maps and images made from a seed.

`generate_scene` lays out a label map like a real outdoor photo (sky on top, a band
of mountains with a jagged ridge, grass or sand below the horizon, water, buildings
with roofs, trees with trunks, rocks, a little don't-care class 0 as thin borders and
specks) and `render_scene` paints an RGB image from it with per-class colour
distributions, textures (value noise, stripes, window grids, gradients) and shading
drawn per instance, so one label map has many plausible images (`render_scene` with
another seed). `make_example` is one example of a split. Writing them as a data set:
`oasis_tf.data.synthetic`.

Only numpy and PIL are used.
"""

from __future__ import annotations

import colorsys
from typing import List, Tuple

import numpy as np
from PIL import Image

from oasis_tf.images import colorize
from oasis_tf.palettes import SYNTHETIC

# The names and label-map colours (not the colours of the rendered images) live in
# oasis_tf.palettes with the other datasets'.
CLASS_NAMES = tuple(name for name, _ in SYNTHETIC)
NUM_CLASSES = len(CLASS_NAMES)
(DONT_CARE, SKY, CLOUD, MOUNTAIN, GRASS, SAND, WATER, BUILDING, ROOF, TREE, TRUNK,
 ROCK) = range(NUM_CLASSES)
PALETTE = np.array([colour for _, colour in SYNTHETIC], dtype=np.uint8)


def colorize_label(label, palette=PALETTE) -> np.ndarray:
    """Colours an int label map [..., H, W] with `palette`; uint8 [..., H, W, 3]."""
    return colorize(label, palette)


# ---------------------------------------------------------------------------
# Label maps.


def _smooth_curve(rng, n, octaves=4, amplitude=1.0, roughness=0.55):
    """A 1-D fractal curve of length n with values roughly in [-1, 1]."""
    x = np.linspace(0.0, 1.0, n, dtype=np.float64)
    out = np.zeros(n)
    amp, total = 1.0, 0.0
    freq = rng.uniform(1.0, 2.5)
    for _ in range(octaves):
        out += amp * np.sin(2 * np.pi * freq * x + rng.uniform(0, 2 * np.pi))
        total += amp
        amp *= roughness
        freq *= rng.uniform(1.8, 2.6)
    return amplitude * out / total


def _noisy_ellipse(rng, yy, xx, cy, cx, ry, rx, wobble=0.2):
    """Mask of an ellipse whose radius wobbles with the angle."""
    dy = (yy - cy) / max(ry, 1e-3)
    dx = (xx - cx) / max(rx, 1e-3)
    theta = np.arctan2(dy, dx)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += wobble / k * rng.uniform(-1, 1) * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    return dx * dx + dy * dy <= r * r


class _Painter:
    def __init__(self, height, width):
        self.label = np.zeros((height, width), np.uint8)
        self.instances = np.zeros((height, width), np.int32)
        self.classes: List[int] = [DONT_CARE]  # instance 0 = background don't-care

    def paint(self, mask, cls):
        if not mask.any():
            return
        self.classes.append(cls)
        self.label[mask] = cls
        self.instances[mask] = len(self.classes) - 1


def generate_scene(seed, size=64) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """Lays out one scene.

    Args:
        seed: int or sequence of ints (a numpy `SeedSequence` entropy).
        size: int (square) or (height, width).

    Returns:
        (label, instances, instance_classes): uint8 [H, W] class ids, int32
        [H, W] instance ids and the class of every instance id.
    """
    rng = np.random.default_rng(seed)
    h, w = (size, size) if np.isscalar(size) else tuple(size)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    p = _Painter(h, w)

    horizon = rng.uniform(0.35, 0.62) * h
    p.paint(np.ones((h, w), bool), SKY)

    # Clouds: a few clusters of blobs high in the sky.
    for _ in range(rng.choice(4, p=[0.3, 0.35, 0.2, 0.15])):
        cy, cx = rng.uniform(0.05, 0.6) * horizon, rng.uniform(0, w)
        mask = np.zeros((h, w), bool)
        for _ in range(rng.integers(2, 5)):
            mask |= _noisy_ellipse(
                rng, yy, xx, cy + rng.normal(0, 0.02 * h), cx + rng.normal(0, 0.08 * w),
                rng.uniform(0.025, 0.07) * h, rng.uniform(0.06, 0.16) * w, 0.15)
        p.paint(mask, CLOUD)

    # Mountains: one or two bands with jagged ridges, the far one higher.
    if rng.random() < 0.8:
        layers = 1 + int(rng.random() < 0.4)
        for layer in range(layers):
            height = rng.uniform(0.12, 0.32) * h * (1.0 - 0.35 * layer)
            ridge = horizon - height * (0.55 + 0.45 * _smooth_curve(rng, w, octaves=5,
                                                                    roughness=0.6))
            p.paint(yy >= ridge[None, :], MOUNTAIN)

    # Ground below a slightly wavy, slightly tilted horizon.
    tilt = rng.uniform(-0.06, 0.06) * h
    line = horizon + tilt * (xx[0] / w - 0.5) + _smooth_curve(rng, w, 2) * 0.02 * h
    ground = yy >= line[None, :]
    base, other = (GRASS, SAND) if rng.random() < 0.65 else (SAND, GRASS)
    p.paint(ground, base)
    if rng.random() < 0.5:  # a patch or path of the other ground class
        if rng.random() < 0.5:
            cx = rng.uniform(0.2, 0.8) * w
            half = rng.uniform(0.03, 0.1) * w
            spread = rng.uniform(0.1, 0.4) * w
            depth = np.clip((yy - horizon) / max(h - horizon, 1), 0, 1)
            centre = cx + rng.uniform(-0.3, 0.3) * w * depth
            mask = ground & (np.abs(xx - centre) < half + spread * depth)
        else:
            mask = ground & _noisy_ellipse(rng, yy, xx, rng.uniform(horizon, h), rng.uniform(0, w),
                                           rng.uniform(0.08, 0.25) * h,
                                           rng.uniform(0.15, 0.4) * w, 0.3)
        p.paint(mask, other)

    # Water: a sea band at the horizon or a lake.
    if rng.random() < 0.55:
        if rng.random() < 0.5:
            shore = line + (rng.uniform(0.08, 0.3) * h
                            + _smooth_curve(rng, w, 3) * 0.05 * h)
            mask = ground & (yy < shore[None, :])
        else:
            mask = ground & _noisy_ellipse(
                rng, yy, xx, rng.uniform(horizon + 0.1 * h, h), rng.uniform(0.1, 0.9) * w,
                rng.uniform(0.06, 0.18) * h, rng.uniform(0.15, 0.35) * w, 0.35)
        p.paint(mask, WATER)

    # Objects standing on the ground, painted far (high) to near (low).
    objects = []
    for _ in range(rng.choice(4, p=[0.3, 0.3, 0.25, 0.15])):
        objects.append(("building", rng.uniform(horizon + 0.01 * h, horizon + 0.3 * h)))
    for _ in range(rng.choice(6, p=[0.15, 0.2, 0.25, 0.2, 0.1, 0.1])):
        objects.append(("tree", rng.uniform(horizon + 0.02 * h, 1.05 * h)))
    for _ in range(rng.choice(5, p=[0.3, 0.3, 0.2, 0.1, 0.1])):
        objects.append(("rock", rng.uniform(horizon + 0.05 * h, 1.0 * h)))
    objects.sort(key=lambda o: o[1])
    for kind, base_y in objects:
        # Perspective: objects nearer the bottom are larger.
        scale = 0.5 + 1.0 * (base_y - horizon) / max(h - horizon, 1)
        cx = rng.uniform(0, w)
        if kind == "building":
            bw = rng.uniform(0.08, 0.25) * w * scale
            bh = rng.uniform(0.12, 0.4) * h * scale
            top = base_y - bh
            body = (np.abs(xx - cx) <= bw / 2) & (yy >= top) & (yy <= base_y)
            p.paint(body, BUILDING)
            r = rng.random()
            if r < 0.45:  # gabled roof
                rh = rng.uniform(0.25, 0.6) * bw
                over = rng.uniform(0.0, 0.12) * bw
                frac = np.clip((top - yy) / max(rh, 1e-3), 0, 1)
                roof = (yy <= top) & (yy >= top - rh) & (
                    np.abs(xx - cx) <= (bw / 2 + over) * (1 - frac))
                p.paint(roof, ROOF)
            elif r < 0.75:  # flat roof slab
                th = max(1.0, rng.uniform(0.04, 0.12) * bh)
                p.paint((np.abs(xx - cx) <= bw / 2 + 0.5) & (yy >= top - th) & (yy < top + 0.5),
                        ROOF)
        elif kind == "tree":
            th = rng.uniform(0.05, 0.12) * h * scale
            tw = max(1.0, rng.uniform(0.012, 0.03) * w * scale)
            p.paint((np.abs(xx - cx) <= tw / 2) & (yy <= base_y) & (yy >= base_y - th), TRUNK)
            cr = rng.uniform(0.05, 0.11) * h * scale
            cy = base_y - th - 0.7 * cr
            crown = np.zeros((h, w), bool)
            conifer = rng.random() < 0.3
            if conifer:
                ch = cr * rng.uniform(2.0, 3.0)
                frac = np.clip((cy + cr - yy) / ch, 0, 1)
                crown = (yy <= cy + cr) & (yy >= cy + cr - ch) & (
                    np.abs(xx - cx) <= cr * 0.9 * (1 - frac) + 0.5)
            else:
                for _ in range(rng.integers(1, 4)):
                    crown |= _noisy_ellipse(
                        rng, yy, xx, cy + rng.normal(0, 0.25 * cr), cx + rng.normal(0, 0.3 * cr),
                        cr * rng.uniform(0.7, 1.1), cr * rng.uniform(0.6, 1.0), 0.35)
            p.paint(crown, TREE)
        else:  # rock
            rr = rng.uniform(0.015, 0.05) * h * scale
            p.paint(_noisy_ellipse(rng, yy, xx, base_y - 0.5 * rr, cx, 0.6 * rr,
                                   rr * rng.uniform(1.0, 1.8), 0.3) & (yy <= base_y), ROCK)

    # Don't-care: thin borders on some sides and a few specks.
    if rng.random() < 0.5:
        width = 1 if max(h, w) < 128 else 2
        sides = rng.random(4) < 0.5
        border = np.zeros((h, w), bool)
        if sides[0]:
            border[:width] = True
        if sides[1]:
            border[-width:] = True
        if sides[2]:
            border[:, :width] = True
        if sides[3]:
            border[:, -width:] = True
        p.label[border] = DONT_CARE
        p.instances[border] = 0
    for _ in range(rng.integers(0, 5)):
        s = int(rng.integers(1, 3))
        y0, x0 = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        p.label[y0:y0 + s, x0:x0 + s] = DONT_CARE
        p.instances[y0:y0 + s, x0:x0 + s] = 0
    return p.label, p.instances, p.classes


# ---------------------------------------------------------------------------
# Rendering.


def _value_noise(rng, h, w, cells):
    """Smooth noise in [0, 1] from a random grid of `cells` x `cells` values."""
    gh, gw = max(2, int(cells * h / max(h, w))), max(2, int(cells * w / max(h, w)))
    grid = rng.random((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BILINEAR))


def _fbm(rng, h, w, base=3, octaves=3):
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        out += amp * _value_noise(rng, h, w, base * 2 ** o)
        total += amp
        amp *= 0.5
    return out / total * 2.0 - 1.0  # roughly [-1, 1]


def _hsv(rng, hue, sat, val):
    """An RGB colour with hue/sat/val drawn uniformly from the given ranges."""
    hh = rng.uniform(*hue) % 1.0
    return np.array(colorsys.hsv_to_rgb(hh, rng.uniform(*sat), rng.uniform(*val)), np.float32)


# hue ranges (fractions of a turn), saturation and value ranges per class; a
# class with several entries picks one per instance (e.g. brick, concrete, glass).
_COLOURS = {
    DONT_CARE: [((0, 1), (0.0, 0.3), (0.05, 0.6))],
    SKY: [((0.54, 0.62), (0.35, 0.8), (0.6, 0.95)), ((0.55, 0.65), (0.05, 0.2), (0.6, 0.85))],
    CLOUD: [((0.55, 0.65), (0.0, 0.1), (0.8, 1.0)), ((0.0, 1.0), (0.0, 0.05), (0.5, 0.75))],
    MOUNTAIN: [((0.55, 0.75), (0.15, 0.45), (0.3, 0.6)), ((0.05, 0.12), (0.2, 0.5), (0.25, 0.55)),
               ((0.0, 1.0), (0.0, 0.1), (0.3, 0.6))],
    GRASS: [((0.2, 0.36), (0.45, 0.85), (0.3, 0.7)), ((0.12, 0.18), (0.4, 0.7), (0.4, 0.7))],
    SAND: [((0.08, 0.14), (0.25, 0.6), (0.55, 0.9)), ((0.05, 0.1), (0.3, 0.6), (0.3, 0.5))],
    WATER: [((0.52, 0.62), (0.4, 0.9), (0.3, 0.75)), ((0.45, 0.52), (0.3, 0.7), (0.3, 0.6))],
    BUILDING: [((0.0, 0.05), (0.4, 0.7), (0.4, 0.7)), ((0.0, 1.0), (0.0, 0.08), (0.45, 0.9)),
               ((0.08, 0.14), (0.15, 0.4), (0.6, 0.9)), ((0.55, 0.62), (0.2, 0.5), (0.4, 0.7))],
    ROOF: [((0.0, 0.04), (0.5, 0.85), (0.35, 0.65)), ((0.0, 1.0), (0.0, 0.1), (0.15, 0.4)),
           ((0.05, 0.1), (0.4, 0.7), (0.25, 0.45))],
    TREE: [((0.22, 0.38), (0.5, 0.9), (0.15, 0.45)), ((0.04, 0.12), (0.6, 0.9), (0.4, 0.7))],
    TRUNK: [((0.05, 0.1), (0.4, 0.7), (0.15, 0.35))],
    ROCK: [((0.0, 1.0), (0.0, 0.12), (0.3, 0.65)), ((0.07, 0.11), (0.15, 0.35), (0.3, 0.5))],
}
_STYLE_WEIGHTS = {TREE: [0.8, 0.2], BUILDING: [0.3, 0.3, 0.25, 0.15], SKY: [0.8, 0.2]}


def _class_colour(rng, cls):
    options = _COLOURS[cls]
    weights = _STYLE_WEIGHTS.get(cls, [1.0 / len(options)] * len(options))
    return _hsv(rng, *options[rng.choice(len(options), p=weights)])


def _render_instance(rng, cls, colour, yy, xx, box):
    """Texture of one instance over its bounding box, float32 [h, w, 3]."""
    y0, y1, x0, x1 = box
    h, w = y1 - y0, x1 - x0
    ny = (yy - y0) / max(h - 1, 1)  # 0 at the top of the box, 1 at the bottom
    nx = (xx - x0) / max(w - 1, 1)
    c = colour[None, None, :]
    # Per-instance directional shading.
    angle = rng.uniform(0, 2 * np.pi)
    shade = 1.0 + rng.uniform(0.0, 0.25) * ((nx - 0.5) * np.cos(angle) + (ny - 0.5) * np.sin(angle))
    noise_amp = {SKY: 0.03, CLOUD: 0.08, WATER: 0.06, DONT_CARE: 0.5}.get(cls, 0.15)
    noise = _fbm(rng, h, w, base=int(rng.integers(2, 6))) * noise_amp * rng.uniform(0.5, 1.5)
    img = c * (shade + noise)[..., None]
    if cls == SKY:
        low = colour + rng.uniform(0.1, 0.35)
        if rng.random() < 0.2:  # sunset
            low = np.array([1.0, rng.uniform(0.5, 0.8), rng.uniform(0.2, 0.5)], np.float32)
        t = ny[..., None] ** rng.uniform(0.8, 2.0)
        img = (1 - t) * img + t * low[None, None, :]
    elif cls == CLOUD:
        img = img * (1.1 - 0.25 * ny[..., None])
    elif cls == MOUNTAIN:
        haze = rng.uniform(0.0, 0.35)
        img = img * (1 - haze) + haze * np.array([0.75, 0.8, 0.9], np.float32)
        img = img * (0.8 + 0.3 * ny[..., None]) if rng.random() < 0.5 else img
        if rng.random() < 0.35:  # snow caps
            line = rng.uniform(0.1, 0.35) + 0.1 * noise / max(noise_amp, 1e-3)
            img = np.where((ny < line)[..., None], np.float32(rng.uniform(0.85, 1.0)), img)
    elif cls in (GRASS, SAND):
        img = img * (0.8 + 0.3 * ny[..., None]) ** rng.uniform(-1, 1)
        if rng.random() < 0.3:  # mowing stripes / furrows
            f = rng.uniform(0.15, 0.5)
            a = rng.uniform(0, np.pi)
            img = img * (1 + 0.1 * np.sign(np.sin(f * (xx * np.cos(a) + yy * np.sin(a)))))[..., None]
    elif cls == WATER:
        f = rng.uniform(0.6, 2.0)
        ripple = np.sin(f * yy + 3 * noise / max(noise_amp, 1e-3))
        img = img * (1 + rng.uniform(0.04, 0.15) * ripple)[..., None]
        img = img + rng.uniform(0.0, 0.2) * (1 - ny)[..., None]
    elif cls == BUILDING:
        px, py = rng.uniform(3, 8), rng.uniform(3, 9)
        duty = rng.uniform(0.35, 0.65)
        win = ((xx - x0) % px < px * duty) & ((yy - y0) % py < py * duty)
        lit = np.array([0.95, 0.85, 0.4], np.float32) if rng.random() < 0.3 else colour * 0.35
        if rng.random() < 0.85:
            img = np.where(win[..., None], lit[None, None, :] * (1 + noise[..., None]), img)
    elif cls == ROOF:
        f = rng.uniform(0.8, 2.0)
        img = img * (1 + 0.1 * np.sin(f * yy))[..., None]
    elif cls == TRUNK:
        img = img * (1 + 0.15 * np.sin(rng.uniform(1.0, 3.0) * xx))[..., None]
    elif cls == TREE:
        blotch = _fbm(rng, h, w, base=int(rng.integers(4, 9)))
        img = img * (1 + 0.25 * blotch)[..., None] * (1.15 - 0.3 * ny[..., None])
    return img


def render_scene(label, instances=None, instance_classes=None, seed=0) -> np.ndarray:
    """Renders an RGB image (uint8 [H, W, 3]) for a label map.

    Args:
        label: int [H, W] class ids (`generate_scene`'s label).
        instances: optional int [H, W] instance ids; without them every class
            is one instance.
        instance_classes: the class of every instance id (with `instances`).
        seed: the rendering seed: other seeds give other images of the same map.
    """
    rng = np.random.default_rng(seed)
    label = np.asarray(label)
    h, w = label.shape
    if instances is None:
        instances = label.astype(np.int32)
        instance_classes = list(range(int(label.max()) + 1))
    yy_full, xx_full = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for k, cls in enumerate(instance_classes):
        mask = instances == k
        if not mask.any():
            continue
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        colour = _class_colour(rng, cls)
        tex = _render_instance(rng, cls, colour, yy_full[y0:y1, x0:x1], xx_full[y0:y1, x0:x1],
                               (y0, y1, x0, x1))
        sub = mask[y0:y1, x0:x1]
        img[y0:y1, x0:x1][sub] = tex[sub]
    # Global lighting: brightness, colour tint, a soft light gradient, sensor noise.
    tint = 1 + rng.uniform(-0.08, 0.08, size=3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    grad = 1 + rng.uniform(0, 0.2) * ((xx_full / w - 0.5) * np.cos(angle)
                                      + (yy_full / h - 0.5) * np.sin(angle))
    img = img * rng.uniform(0.75, 1.15) * tint[None, None, :] * grad[..., None]
    img = img + rng.normal(0, rng.uniform(0.005, 0.02), size=img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_example(seed=0, index=0, split=0, size=64) -> Tuple[np.ndarray, np.ndarray]:
    """(image uint8 [H, W, 3], label uint8 [H, W]) of example `index` of a split."""
    label, inst, classes = generate_scene([seed, split, index, 0], size)
    image = render_scene(label, inst, classes, seed=[seed, split, index, 1])
    return image, label
