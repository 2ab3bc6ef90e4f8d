"""What the inspector found, as data: `DatasetReport` (text, JSON, picture, resolved config).

    report.format()            # the text `tools/inspect_data.py` prints
    report.write(out_dir)      # dataset_report.json and dataset_report.png
    report.resolve(config)     # config with its "auto" values filled in
    report.exit_status         # 1 when there are problems, else 0
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Tuple

REPORT_JSON = "dataset_report.json"
REPORT_PNG = "dataset_report.png"
_MAX_PROBLEM_LINES = 100
_MAX_VALUE_LINES = 60


class DatasetProblemsError(ValueError):
    """A data set with problems (``report.problems``: one line each, naming the file).

    Its message is the lines themselves: a command prints it as it is."""

    def __init__(self, report):
        self.report = report
        lines = report.problems
        shown = "\n".join(f"  {p}" for p in lines[:_MAX_PROBLEM_LINES])
        more = len(lines) - _MAX_PROBLEM_LINES
        super().__init__(
            f"the data set in {report.root} has {len(lines)} problem(s):\n{shown}"
            + (f"\n  (and {more} more)" if more > 0 else "")
            + "".join(f"\nnote: {n}" for n in report.notes)
            + f"\n`oasis-inspect-data {report.root}` writes the whole report")


def _size_text(size) -> str:
    return f"{size[0]}x{size[1]}"


def _value_text(value) -> str:
    return str(value) if value is not None else "none"


@dataclasses.dataclass
class DatasetReport:
    """The inspector's findings (`oasis_tf.data.inspect_dataset`).

    Attributes:
        root: the data set's folder.
        layout: its shape, in words; shape: "split folders", "one folder", "VOC" or None.
        splits: pairs per split ({"train": n, "val": n}; None: no such split).
        held_out: the val split is held out by ``val_fraction``.
        unpaired: photos without a mask and masks without a photo (relative paths).
        image_sizes: {(H, W): photos}.
        mask_kinds: {"palette PNG (indices)": masks, ...}.
        label_encoding: "ids" or "colors".
        class_table: the class table's path, or None.
        values: per stored value (id, or the colour's class table id): ``stored``,
            ``color`` (colour masks), ``class``, ``name``, ``pixels``, ``files``.
        mapping: the label mapping, in words; ignore_reason: why that ignore label.
        size_reason: why that image size (with the networks' rule).
        proposed: the data-implied config values, ``section.key`` -> value.
        auto: the ``section.key`` names that were "auto" (``resolve`` fills them).
        problems: one line per problem, naming the file.
        notes: remarks that are no problem.
        num_pairs: pairs read; time_s: seconds the inspection took.
        samples: a few (photo, mask) pairs for the picture.
        label_mapping: the `LabelMapping` training applies (None: no mapping fits).
    """

    root: str
    layout: str
    shape: Optional[str]
    splits: Dict[str, Optional[int]]
    held_out: bool
    val_fraction: float
    unpaired: List[str]
    image_sizes: Dict[Tuple[int, int], int]
    mask_kinds: Dict[str, int]
    label_encoding: str
    class_table: Optional[str]
    values: List[Dict[str, Any]]
    mapping: str
    ignore_reason: str
    size_reason: str
    proposed: Dict[str, Any]
    auto: List[str]
    problems: List[str]
    notes: List[str]
    num_pairs: int
    time_s: float
    samples: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    label_mapping: Any = None

    @property
    def exit_status(self) -> int:
        """1 when there are problems, else 0 (the inspect command's exit status)."""
        return 1 if self.problems else 0

    @property
    def resolved(self) -> Dict[str, Any]:
        """The proposed values of the "auto" keys (what ``resolve`` sets)."""
        return {k: v for k, v in self.proposed.items() if k in self.auto}

    def overrides(self) -> List[str]:
        """The proposed values as ``--override section.key=value`` strings."""
        return [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in self.proposed.items()]

    def resolve(self, config):
        """``config`` with its "auto" values replaced by the proposed ones.

        Raises:
            DatasetProblemsError: the data set has problems.
        """
        if self.problems:
            raise DatasetProblemsError(self)
        from oasis_tf.config import OASISConfig

        values = config.to_dict()
        for key in config.auto_fields():
            section, name = key.split(".")
            values[section][name] = self.proposed[key]
        return OASISConfig.from_dict(values)

    def summary_lines(self) -> List[str]:
        """The few lines a training log says about the data."""
        splits = ", ".join(f"{k} {v}" for k, v in self.splits.items() if v is not None)
        p = self.proposed
        lines = [f"data: {self.layout}; pairs: {splits}",
                 f"data: masks {self.label_encoding} ({', '.join(self.mask_kinds)}); label "
                 f"mapping: {self.mapping} ({self.ignore_reason})",
                 f"data: {p.get('model.num_classes')} classes, don't-care class 0: "
                 f"{p.get('model.dontcare_label')}; image size {self.size_reason}"]
        return lines + [f"data: {n}" for n in self.notes]

    # ------------------------------------------------------------ text
    def format(self) -> str:
        """The report as text (all of it; problems beyond 100 lines are counted)."""
        out = [f"Data set: {self.root}", f"Shape: {self.layout or 'none found'}"]
        splits = ", ".join(f"{k} {_value_text(v)}" for k, v in self.splits.items())
        out.append(f"Pairs: {splits}" + (f" (val held out: data.val_fraction "
                                         f"{self.val_fraction:g})" if self.held_out else ""))
        out.append(f"Unpaired files: {len(self.unpaired) or 'none'}")
        out += [f"  {p}" for p in self.unpaired[:_MAX_PROBLEM_LINES]]
        sizes = ", ".join(f"{_size_text(s)} ({n})" for s, n in list(self.image_sizes.items())[:8])
        more = len(self.image_sizes) - 8
        out.append(f"Photo sizes (HxW, photos): {sizes or 'none'}"
                   + (f" and {more} other sizes" if more > 0 else ""))
        kinds = ", ".join(f"{k} ({n})" for k, n in self.mask_kinds.items())
        out.append(f"Masks: {kinds or 'none read'}; label encoding {self.label_encoding}")
        out.append(f"Class table: {self.class_table or 'none (classes.json / classes.csv)'}")
        out.append("Mask values (stored -> class, name: pixels in files):")
        for v in self.values[:_MAX_VALUE_LINES]:
            stored = f"{v['stored']}" + (f" {tuple(v['color'])}" if v.get("color") else "")
            cls = "no class" if v["class"] is None else f"class {v['class']} {v['name']}"
            out.append(f"  {stored:>5} -> {cls}: {v['pixels']} px in {v['files']} file(s)")
        if len(self.values) > _MAX_VALUE_LINES:
            out.append(f"  (and {len(self.values) - _MAX_VALUE_LINES} more values)")
        out.append(f"Label mapping: {self.mapping} ({self.ignore_reason})")
        out.append(f"Image size: {self.size_reason or 'no photo read'}")
        out.append("Proposed configuration (" + (", ".join(self.auto) + " were auto"
                                                 if self.auto else "nothing was auto") + "):"
                   if self.num_pairs else "Proposed configuration: none (no pairs read)")
        for key, value in self.proposed.items() if self.num_pairs else ():
            text = json.dumps(value) if not isinstance(value, list) or len(value) < 8 else (
                json.dumps(value[:6])[:-1] + f", ... {len(value)} entries]")
            out.append(f"  {key}: {text}")
        out += [f"Note: {n}" for n in self.notes]
        out.append(f"Problems: {len(self.problems) or 'none'}")
        out += [f"  {p}" for p in self.problems[:_MAX_PROBLEM_LINES]]
        if len(self.problems) > _MAX_PROBLEM_LINES:
            out.append(f"  (and {len(self.problems) - _MAX_PROBLEM_LINES} more: all in "
                       f"{REPORT_JSON})")
        out.append(f"({self.num_pairs} pairs read in {self.time_s:.1f} s)")
        return "\n".join(out)

    # ------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """Plain data for JSON (sizes as [H, W] lists)."""
        out = dataclasses.asdict(self)
        out["image_sizes"] = [{"size": list(s), "photos": n} for s, n in self.image_sizes.items()]
        out["samples"] = [list(p) for p in self.samples]
        out["exit_status"] = self.exit_status
        return out

    def write(self, out_dir, picture=True) -> Tuple[str, Optional[str]]:
        """Writes ``dataset_report.json`` and (``picture``) ``dataset_report.png`` (class
        histogram; photo | mask overlays with the class names) into ``out_dir``.

        Returns:
            The two paths (the picture's None without ``picture``).
        """
        from oasis_tf.data.report_figure import plot_dataset_report

        os.makedirs(out_dir, exist_ok=True)
        json_path = os.path.join(out_dir, REPORT_JSON)
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")
        if not picture:
            return json_path, None
        return json_path, plot_dataset_report(self, os.path.join(out_dir, REPORT_PNG))
