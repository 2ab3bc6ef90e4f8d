"""An own data set's class table: ``classes.json`` or ``classes.csv`` at its root.

    classes.json: [{"id": 0, "name": "road", "color": [128, 64, 128]}, ...]
    classes.csv:  id,name,r,g,b          (a header line, then one class per line)

It names the mask ids (and gives them colours); for RGB masks it is what turns a
colour into an id. ``color`` (or r, g, b) may be left out for id masks.

    table, problems = read_class_table("data/my_set")   # (None, []) without a table

Every problem is one line naming the file (and line) and what is wrong.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

TABLE_FILES = ("classes.json", "classes.csv")
_CSV_HEADER = ["id", "name", "r", "g", "b"]


@dataclasses.dataclass(frozen=True)
class ClassTable:
    """Names and colours by mask id.

    Attributes:
        path: the file it was read from.
        names: {id: name}.
        colors: {id: (r, g, b)} of the ids that have a colour.
    """

    path: str
    names: Dict[int, str]
    colors: Dict[int, Tuple[int, int, int]]

    def shared_colors(self) -> List[str]:
        """One line per colour that several ids have (RGB masks cannot tell them apart)."""
        ids: Dict[Tuple[int, int, int], List[int]] = {}
        for class_id, rgb in sorted(self.colors.items()):
            ids.setdefault(rgb, []).append(class_id)
        return [f"{self.path}: colour {list(rgb)} is ids {', '.join(map(str, same))}; RGB "
                f"masks need one colour per class" for rgb, same in ids.items() if len(same) > 1]


def _color(value, where, problems) -> Optional[Tuple[int, int, int]]:
    if value is None:
        return None
    try:
        rgb = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or min(rgb) < 0 or max(rgb) > 255:
        problems.append(f"{where}: colour {value!r} is not [r, g, b] in 0..255")
        return None
    return rgb


def _entries_json(path, problems) -> List[Tuple[str, object, object, object]]:
    """(where, id, name, colour) per entry of classes.json."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: cannot read it: {e}")
        return []
    if isinstance(data, dict) and "classes" in data:
        data = data["classes"]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        problems.append(f'{path}: expected a list of {{"id", "name", "color"}} objects')
        return []
    return [(f"{path} entry {i}", e.get("id"), e.get("name"), e.get("color"))
            for i, e in enumerate(data)]


def _entries_csv(path, problems) -> List[Tuple[str, object, object, object]]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{path}: cannot read it: {e}")
        return []
    if not rows or [c.strip().lower() for c in rows[0]][:2] != _CSV_HEADER[:2]:
        problems.append(f"{path}: the first line must be the header {','.join(_CSV_HEADER)}")
        return []
    out = []
    for number, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row] + [""] * 5
        rgb = cells[2:5] if any(cells[2:5]) else None
        out.append((f"{path} line {number}", cells[0], cells[1], rgb))
    return out


def read_class_table(root) -> Tuple[Optional[ClassTable], List[str]]:
    """The class table at ``root`` and the problems found in it.

    Args:
        root: the data set's folder.

    Returns:
        ``(table or None, problems)``: no table file gives ``(None, [])``.
    """
    root = os.fspath(root)
    found = [os.path.join(root, n) for n in TABLE_FILES if os.path.isfile(os.path.join(root, n))]
    if not found:
        return None, []
    problems: List[str] = []
    if len(found) > 1:
        problems.append(f"{root}: both {' and '.join(TABLE_FILES)}; keep one")
    path = found[0]
    reader = _entries_json if path.endswith(".json") else _entries_csv
    names: Dict[int, str] = {}
    colors: Dict[int, Tuple[int, int, int]] = {}
    for where, raw_id, name, raw_color in reader(path, problems):
        try:
            class_id = int(raw_id)
        except (TypeError, ValueError):
            problems.append(f"{where}: id {raw_id!r} is not an integer")
            continue
        if not 0 <= class_id < 65536:
            problems.append(f"{where}: id {class_id} is not a mask value (0..65535)")
            continue
        if class_id in names:
            problems.append(f"{where}: id {class_id} is listed twice")
            continue
        names[class_id] = str(name).strip() if name not in (None, "") else f"class_{class_id}"
        rgb = _color(raw_color, where, problems)
        if rgb is not None:
            colors[class_id] = rgb
    return ClassTable(path, names, colors), problems
