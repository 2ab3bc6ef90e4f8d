"""The values an own data set implies, decided from what the inspector counted: the
ignore label, the class names and colours, the image size. Each decision comes with
the sentence that explains it (the inspector's report prints them).

Rules:

* ignore label ("auto"): a class of the class table named void, ignore, unlabeled /
  unlabelled, boundary or don't care (0 there is ADE20K's convention: no shift);
  else 255 when the masks hold it and the class table has no class 255, or, without
  a table, when every other id is below 200 (VOC, Cityscapes trainIds, COCO-Stuff).
* image size ("auto"): both sides divisible by ``image_size_factor(num_res_blocks)``
  (lcm(2**(num_res_blocks - 1), 64): the generator doubles its latent map in each
  block, the discriminator halves six times), the longer side at most ``max_side``
  and not above the photos' (at least one factor), the aspect ratio nearest the
  photos' median one.
"""

from __future__ import annotations

import math
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from oasis_tf.palettes import voc_colormap

IGNORE_NAMES = ("void", "ignore", "ignored", "unlabeled", "unlabelled", "boundary", "dontcare")
SMALL_IDS = 200
DEFAULT_MAX_SIDE = 256
DONTCARE_NAME = "dont_care"


def _plain_name(name) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def choose_ignore_label(setting, seen_ids: Sequence[int], table=None) -> Tuple[Optional[int], str]:
    """The ignore label (a stored id, or None) and why.

    Args:
        setting: ``data.ignore_label``: an int, None, or "auto" (the rules above).
        seen_ids: the stored ids the masks hold.
        table: the `ClassTable`, if any.
    """
    if setting is None:
        return None, "no ignore label (data.ignore_label: null)"
    if not isinstance(setting, str):
        return int(setting), f"data.ignore_label: {int(setting)}"
    if table is not None:
        named = sorted(i for i, n in table.names.items() if _plain_name(n) in IGNORE_NAMES)
        if named:
            return named[0], (f"{table.names[named[0]]!r} (id {named[0]}) in "
                              f"{os.path.basename(table.path)} is the ignore label")
    seen = set(int(i) for i in seen_ids)
    if 255 not in seen:
        return None, "no ignore label (no 255 in the masks)"
    if table is not None:
        if 255 in table.names:
            return None, f"no ignore label (255 is the class {table.names[255]!r})"
        return 255, "255 is in the masks and in no class of the class table"
    high = max(seen - {255}, default=-1)
    if high < SMALL_IDS:
        return 255, f"255 next to the ids 0..{high} (below {SMALL_IDS})"
    return None, f"no ignore label (255 next to ids up to {high}, not below {SMALL_IDS})"


def class_of_stored(stored, ignore_label, shift) -> Optional[int]:
    """The class of a stored id: the ignore label 0, the others +1 when ``shift``."""
    if ignore_label is not None and stored == ignore_label:
        return 0
    return stored + 1 if shift else stored


def _stored_of_class(num_classes, ignore_label, shift) -> List[Optional[int]]:
    """For each class, the stored id it comes from (None: none)."""
    out: List[Optional[int]] = [None] * num_classes
    for c in range(num_classes):
        stored = c - 1 if shift else c
        if 0 <= stored != ignore_label:
            out[c] = stored
    if ignore_label is not None and num_classes:
        out[0] = ignore_label
    return out


def _free_colors(used):
    """Colours of the PASCAL VOC map not in ``used``, in order."""
    for color in voc_colormap(4096)[1:]:
        color = tuple(int(v) for v in color)
        if color not in used:
            yield color


def class_names_and_palette(num_classes, ignore_label, shift, zero_is_dontcare, table=None,
                            file_palette=None) -> Tuple[List[str], List[List[int]]]:
    """One name and one colour per class.

    Names: the class table's, else ``class_<stored id>``; class 0, when it is the
    don't-care class, ``dont_care`` unless the table names it. Colours: the table's,
    else the palette PNG's, else the PASCAL VOC colour map of the stored id; colours
    not from the table that repeat an earlier one are replaced by unused ones, so every
    class has its own colour (needed to read colour-coded label maps back).

    Args:
        num_classes: the class count.
        ignore_label, shift: the mapping (stored ids -> classes).
        zero_is_dontcare: class 0 is the don't-care class.
        table: the `ClassTable`, if any.
        file_palette: uint8 [256, 3], a palette PNG's colours.
    """
    stored_of = _stored_of_class(num_classes, ignore_label, shift)
    dontcare = ignore_label is not None or zero_is_dontcare
    names, colors, fixed = [], [], []
    for c, stored in enumerate(stored_of):
        name = table.names.get(stored) if table is not None and stored is not None else None
        if name is None:
            name = DONTCARE_NAME if c == 0 and dontcare else f"class_{stored}"
        names.append(name)
        color = None
        if table is not None and stored in table.colors:
            color, fixed_color = table.colors[stored], True
        else:
            fixed_color = False
            if stored is not None and file_palette is not None and stored < 256:
                color = tuple(int(v) for v in file_palette[stored])
            elif stored is not None:
                color = tuple(int(v) for v in voc_colormap(stored + 1)[stored])
            else:
                color = (0, 0, 0)
        colors.append(tuple(color))
        fixed.append(fixed_color)
    used = {colors[c] for c in range(num_classes) if fixed[c]}
    free = _free_colors(used | set(colors))
    for c in range(num_classes):
        if fixed[c]:
            continue
        if colors[c] in used:
            colors[c] = next(free)
        used.add(colors[c])
    return names, [list(c) for c in colors]


def propose_image_size(sizes: Dict[Tuple[int, int], int], num_res_blocks,
                       max_side=DEFAULT_MAX_SIDE) -> Tuple[Tuple[int, int], str]:
    """``model.image_size`` for photos of ``sizes`` ({(H, W): count}) and why (the rule
    in the module docstring)."""
    from oasis_tf.config.schema import image_size_factor  # the config imports oasis_tf.data

    factor = image_size_factor(num_res_blocks)
    heights = np.repeat([s[0] for s in sizes], list(sizes.values()))
    widths = np.repeat([s[1] for s in sizes], list(sizes.values()))
    aspect = float(np.median(heights / widths))
    longer = int(max(np.median(heights), np.median(widths)))
    limit = max(factor, min(max_side, longer) // factor * factor)
    steps = range(factor, limit + 1, factor)
    best = max(((h, w) for h in steps for w in steps),
               key=lambda s: (-abs(math.log(s[0] / s[1] / aspect)), s[0] * s[1]))
    rule = (f"the networks' rule: both sides divisible by {factor} = "
            f"lcm(2**(num_res_blocks-1) = {2 ** (num_res_blocks - 1)}, 64), as the generator "
            f"doubles its latent map after each of its blocks but the last and the "
            f"discriminator halves its input six times")
    why = (f"{best[0]}x{best[1]}: aspect {best[0] / best[1]:.2f} nearest the photos' "
           f"{aspect:.2f} (median), longer side at most {min(max_side, longer)} px (the "
           f"photos' median {longer} px, capped at {max_side}); {rule}")
    if abs(math.log(best[0] / best[1] / aspect)) > 0.05:
        exact = _exact_size(aspect, factor)
        if exact is not None:
            why += (f". {exact[0]}x{exact[1]} keeps the aspect (--override "
                    f"model.image_size=[{exact[0]},{exact[1]}])")
    return best, why


def _exact_size(aspect, factor, largest=1024):
    """The smallest (H, W) within the rule whose aspect is within 2% of ``aspect``
    (None: none up to ``largest`` px)."""
    steps = range(factor, largest + 1, factor)
    sizes = [(h, w) for h in steps for w in steps if abs(math.log(h / w / aspect)) < 0.02]
    return min(sizes, key=lambda s: s[0] * s[1]) if sizes else None
