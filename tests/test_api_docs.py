"""One home per public name: only package ``__init__.py`` files have an ``__all__``, and
docs/api.md lists exactly the names of every package's ``__all__``."""

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import oasis_tf

REPO = Path(__file__).resolve().parents[1]


def _documented():
    """``{package: [names]}`` of docs/api.md (sections "## `package`", items "- `name`")."""
    sections, current = {}, None
    for line in (REPO / "docs" / "api.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `([\w.]+)`", line)
        if heading:
            current = sections.setdefault(heading.group(1), [])
            continue
        item = re.match(r"^- `(\w+)`", line)
        if item and current is not None:
            current.append(item.group(1))
    return sections


def test_api_page_lists_every_package_all():
    packages = ["oasis_tf"] + [m.name for m in pkgutil.walk_packages(oasis_tf.__path__,
                                                                      "oasis_tf.") if m.ispkg]
    exported = {}
    for name in packages:
        names = getattr(importlib.import_module(name), "__all__", None)
        if names is not None:
            exported[name] = list(names)
            assert len(set(names)) == len(names), f"{name}.__all__ repeats a name"
            missing = [n for n in names if not hasattr(importlib.import_module(name), n)]
            assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    documented = _documented()
    assert sorted(documented) == sorted(exported)
    for name, names in exported.items():
        assert documented[name] == names, (name, set(names) ^ set(documented[name]))


def test_only_package_init_files_have_all():
    for path in sorted((REPO / "oasis_tf").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            assert not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets), \
                f"{path.relative_to(REPO)} defines __all__"
