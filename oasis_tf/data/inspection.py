"""The inspector: what an own data set holds, what is wrong with it, what to train it with.

    report = oasis_tf.data.inspect_dataset("data/my_set")   # oasis_tf/configs/folder.yaml's rules
    print(report.format())
    report.write("data/my_set")        # dataset_report.json + dataset_report.png
    sys.exit(report.exit_status)       # 1 when there are problems

It finds the data set's shape (`oasis_tf.data.discovery`), reads the class table
(`oasis_tf.data.class_table`), reads every photo's header and every mask's pixels
(`oasis_tf.data.scan`, a thread pool) and decides the values the data set implies
(`oasis_tf.data.proposal`): class count, ignore label and don't-care class, label
encoding, class names and colours, image size. Values set in the config (not
"auto") are kept and checked against the data. Every problem is one line naming
the file; all of them are collected, none stops the inspection.
"""

from __future__ import annotations

import collections
import os
import time
from typing import Dict, List

import numpy as np

from oasis_tf.data import discovery, proposal
from oasis_tf.data.class_table import read_class_table
from oasis_tf.data.dataset_report import DatasetReport
from oasis_tf.data.label_mapping import LabelMapping, color_text, list_values, pack_colors
from oasis_tf.data.scan import MASK_KINDS, scan_pairs

NUM_SAMPLES = 4  # photo | mask overlays in the picture


def _is_auto(value):
    from oasis_tf.config.fields import is_auto

    return is_auto(value)


def _config(config, overrides):
    from oasis_tf.config import OASISConfig, apply_overrides, load_config

    if config is None:
        config = "folder"
    if not isinstance(config, OASISConfig):
        config = load_config(config)
    return apply_overrides(config, overrides) if overrides else config


def _rel(path, root):
    return os.path.relpath(path, root)


class _Inspection:
    """The state of one `inspect_dataset` call (its steps are the methods)."""

    def __init__(self, root, config, max_side, workers):
        self.root = os.path.abspath(os.fspath(root))
        self.config = config
        self.max_side = max_side
        self.workers = workers
        self.problems: List[str] = []
        self.notes: List[str] = []
        self.proposed: Dict[str, object] = {}
        self.unpaired: List[str] = []

    # ------------------------------------------------------------ files
    def find_files(self):
        self.table, problems = read_class_table(self.root)
        self.problems += problems
        self.found = discovery.find_layout(self.root)
        self.problems += self.found.problems
        self.notes += self.found.notes
        val_fraction = self.config.data.val_fraction
        self.splits = {s: discovery.split_pairs(self.found, s, val_fraction)
                       for s in discovery.SPLITS}
        listed = self.found.shape == "VOC" and not self.found.held_out  # lists name them
        for part in [] if listed else self.found.parts:
            no_mask, no_photo = part.unpaired()
            self.unpaired += [_rel(p, self.root) for p in no_mask + no_photo]
            self.problems += [f"{_rel(p, self.root)}: a photo without a mask (looked for "
                              f"{_rel(part.mask_dir, self.root)}/<same name>.png, also with "
                              f"a suffix such as _mask)" for p in no_mask]
            self.problems += [f"{_rel(p, self.root)}: a mask without a photo in "
                              f"{_rel(part.image_dir, self.root)}/" for p in no_photo]
        if self.found.held_out:
            self.notes.append(f"no val/ folder: {len(self.splits['val'] or [])} pair(s) held "
                              f"out as the val split (data.val_fraction "
                              f"{val_fraction:g}, by a hash of each file name)")
        seen, self.pairs = set(), []
        for split in discovery.SPLITS:
            for pair in self.splits[split] or []:
                if pair[1] not in seen:
                    seen.add(pair[1])
                    self.pairs.append(pair)
        if self.found.shape is not None and not self.pairs:
            self.problems.append(f"{self.root}: no pairs of a photo and a mask")
        elif self.found.shape is not None and not self.splits["train"]:
            self.problems.append(f"{self.root}: no training pairs (a val split only)")

    # ------------------------------------------------------------ masks
    def read_masks(self):
        self.scans = scan_pairs(self.pairs, self.root, self.workers)
        for scan in self.scans:
            self.problems += scan.problems
        self.good = [s for s in self.scans if s.mode is not None]
        kinds = collections.Counter(MASK_KINDS[s.mode] for s in self.good)
        self.mask_kinds = dict(kinds.most_common())
        colors = [s for s in self.good if s.colors]
        setting = self.config.data.label_encoding
        if _is_auto(setting):
            setting = "colors" if len(colors) * 2 > len(self.good) else "ids"
        self.encoding = setting
        for scan in self.good:
            if scan.colors != (setting == "colors"):
                self.problems.append(
                    f"{_rel(scan.mask, self.root)}: {MASK_KINDS[scan.mode]}; the data set's "
                    f"masks are {'RGB colours' if setting == 'colors' else 'class ids'} "
                    f"(data.label_encoding: {setting})")
        self.good = [s for s in self.good if s.colors == (setting == "colors")]
        self.file_palette = next((s.palette for s in self.good if s.palette is not None), None)
        if setting == "colors":
            self._colors_to_ids()

    def _colors_to_ids(self):
        """Colour masks: each colour becomes its class table id (unknown ones are
        problems, one line per file with its colours and pixel counts)."""
        table = self.table
        if table is None or not table.colors:
            grey = all((s.values % 65793 == 0).all() for s in self.good)  # r == g == b
            self.problems.append(
                f"{self.root}: the masks are RGB colours, but there is no class table with "
                f"colours (classes.json or classes.csv: id, name, r, g, b) to say which colour "
                f"is which class" + ("; their three channels are equal everywhere: if they "
                                     "are ids, save them as single-channel (grey) PNGs"
                                     if grey else ""))
            self.good = []
            return
        self.problems += table.shared_colors()
        id_of = {int(pack_colors(np.array(c))): i for i, c in table.colors.items()}
        name = os.path.basename(table.path)
        for scan in self.good:
            known = np.array([int(v) in id_of for v in scan.values], bool)
            if not known.all():
                self.problems.append(
                    f"{_rel(scan.mask, self.root)}: colour(s) not in {name}: "
                    f"{list_values(scan.values[~known], scan.counts[~known], color_text)}")
            scan.values = np.array([id_of[int(v)] for v in scan.values[known]], np.int64)
            scan.counts = scan.counts[known]

    # ------------------------------------------------------------ classes
    def decide_classes(self):
        d, m = self.config.data, self.config.model
        pixels, files = collections.Counter(), collections.Counter()
        for scan in self.good:
            for v, c in zip(scan.values.tolist(), scan.counts.tolist()):
                pixels[v] += c
                files[v] += 1
        self.pixels, self.files = pixels, files
        ignore, why = proposal.choose_ignore_label(d.ignore_label, pixels, self.table)
        shift = LabelMapping.from_options(2, ignore, d.zero_is_dontcare).shift
        stored = set(pixels) | (set(self.table.names) if self.table is not None else set())
        stored.discard(ignore)
        if _is_auto(m.num_classes):
            num_classes = max(stored, default=0) + (2 if shift else 1)
        else:
            num_classes = m.num_classes
        num_classes = max(num_classes, 2)
        self.ignore_reason = why
        self.mapping = LabelMapping.from_options(num_classes, ignore, d.zero_is_dontcare)
        self._check_ids()
        dontcare = ignore is not None or d.zero_is_dontcare
        names, palette = proposal.class_names_and_palette(
            num_classes, ignore, shift, d.zero_is_dontcare, self.table, self.file_palette)
        self._check_explicit("model.class_names", m.class_names, names, num_classes)
        self._check_explicit("model.palette", m.palette, palette, num_classes,
                             must_equal=self.encoding == "colors")
        self.proposed.update({
            "model.num_classes": num_classes, "model.dontcare_label": dontcare,
            "model.class_names": names, "model.palette": palette,
            "data.ignore_label": ignore, "data.label_encoding": self.encoding})
        if dontcare and m.dontcare_label is False:
            self.notes.append(f"model.dontcare_label is false: the don't-care class 0 "
                              f"({self.mapping.describe()}) is trained as a class")

    def _check_ids(self):
        """Ids that are no class (beyond the class count) or not in the class table: one
        line per file."""
        lookup = self.mapping.lookup()
        table_ids = set(self.table.names) if self.table is not None else None
        name = os.path.basename(self.table.path) if self.table is not None else ""
        ignore = self.mapping.ignore_label
        with_255 = 0
        for scan in self.good:
            values, counts = scan.values, scan.counts
            beyond = (values >= len(lookup)) | (lookup[np.minimum(values, len(lookup) - 1)] < 0)
            with_255 += int(ignore is None and 255 in values[beyond])
            if beyond.any():
                self.problems.append(
                    f"{_rel(scan.mask, self.root)}: id(s) beyond the {self.mapping.num_classes} "
                    f"classes ({self.mapping.describe()}): "
                    f"{list_values(values[beyond], counts[beyond])}")
            if table_ids is not None and self.encoding == "ids":
                unknown = np.array([v not in table_ids and v != ignore for v in values.tolist()],
                                   bool)
                if unknown.any():
                    self.problems.append(
                        f"{_rel(scan.mask, self.root)}: id(s) not in {name}: "
                        f"{list_values(values[unknown], counts[unknown])}")
        if with_255:
            self.notes.append(f"{with_255} mask(s) hold 255 beyond the classes: if it marks "
                              f"unlabelled pixels, set data.ignore_label: 255 (or auto, as "
                              f"oasis_tf/configs/folder.yaml does)")

    def _check_explicit(self, key, value, proposed, num_classes, must_equal=False):
        if value is None or _is_auto(value):
            return
        if len(value) != num_classes:
            self.problems.append(f"{key} has {len(value)} entries; the data set has "
                                 f"{num_classes} classes")
        elif must_equal and [list(v) for v in value] != proposed:
            self.problems.append(f"{key} differs from the class table's colours, which the RGB "
                                 f"masks are read with; leave it auto")

    # ------------------------------------------------------------ sizes
    def decide_size(self):
        m = self.config.model
        sizes = collections.Counter(s.image_size for s in self.scans if s.image_size)
        self.sizes = dict(sizes.most_common())
        self.size_reason = ""
        if not _is_auto(m.image_size):
            size = tuple(m.image_size)
            self.size_reason = f"{size[0]}x{size[1]} (set in the config)"
        elif sizes:
            size, self.size_reason = proposal.propose_image_size(
                sizes, m.num_res_blocks, self.max_side)
        else:
            return
        self.proposed.update({"model.image_size": list(size), "data.load_size": size[1],
                              "data.crop_size": size[1]})

    # ------------------------------------------------------------ report
    def report(self, seconds):
        values = []
        colours = self.table.colors if self.encoding == "colors" and self.table else {}
        names = self.proposed.get("model.class_names") or []
        lookup = self.mapping.lookup()
        for stored in sorted(self.pixels):
            cls = int(lookup[stored]) if stored < len(lookup) and lookup[stored] >= 0 else None
            colour = colours.get(stored)
            values.append({"stored": stored, "color": list(colour) if colour else None,
                           "class": cls,
                           "name": names[cls] if cls is not None and cls < len(names) else None,
                           "pixels": int(self.pixels[stored]), "files": int(self.files[stored])})
        auto = self.config.auto_fields()
        step = max(1, len(self.pairs) // NUM_SAMPLES)
        ok = {s.mask for s in self.good if not s.problems}
        samples = [p for p in self.splits.get("train") or [] if p[1] in ok][::step][:NUM_SAMPLES]
        return DatasetReport(
            root=self.root, layout=self.found.description, shape=self.found.shape,
            splits={s: (None if p is None else len(p)) for s, p in self.splits.items()},
            held_out=self.found.held_out, val_fraction=self.config.data.val_fraction,
            unpaired=self.unpaired, image_sizes=self.sizes, mask_kinds=self.mask_kinds,
            label_encoding=self.encoding,
            class_table=self.table.path if self.table is not None else None,
            values=values, mapping=self.mapping.describe(), ignore_reason=self.ignore_reason,
            size_reason=self.size_reason, proposed=self.proposed, auto=auto,
            problems=self.problems, notes=self.notes, num_pairs=len(self.pairs),
            time_s=round(seconds, 3), samples=samples, label_mapping=self._pipeline_mapping())

    def _pipeline_mapping(self):
        """The mapping the training pipeline will apply (None when the data set cannot be
        read)."""
        p = self.proposed
        try:
            return LabelMapping.from_options(
                p["model.num_classes"], p["data.ignore_label"],
                self.config.data.zero_is_dontcare,
                colors=p["model.palette"] if self.encoding == "colors" else None)
        except ValueError:  # e.g. colours shared by classes: already a problem
            return None


def inspect_dataset(root, config=None, overrides=(), max_side=proposal.DEFAULT_MAX_SIDE,
                    workers=None) -> DatasetReport:
    """Inspects the own data set in ``root`` (see the module docstring).

    Args:
        root: the data set's folder.
        config: an ``OASISConfig``, a preset name or a YAML path (default "folder",
            ``oasis_tf/configs/folder.yaml``): its "auto" values are decided from the data,
            the others checked against it.
        overrides: ``section.key=value`` strings applied to ``config`` (e.g.
            "data.ignore_label=null").
        max_side: the longest side a proposed ``model.image_size`` may have.
        workers: threads reading the files (default: see `oasis_tf.data.scan.scan_pairs`).

    Returns:
        A `DatasetReport`: ``problems`` (one line per bad file), ``proposed`` (the
        data-implied config values), ``format()``, ``write(out_dir)``,
        ``resolve(config)``, ``exit_status``.
    """
    start = time.time()
    inspection = _Inspection(root, _config(config, overrides), max_side, workers)
    inspection.find_files()
    inspection.read_masks()
    inspection.decide_classes()
    inspection.decide_size()
    return inspection.report(time.time() - start)
