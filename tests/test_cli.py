"""The commands as a user meets them: every ``oasis-*`` command's ``--help`` starts with
examples and lists its flags, flag mistakes are one line and exit status 2, errors one
line and status 1; the console scripts of setup.py name these commands; tools/ holds
shims only (the official-code benchmark aside) and no tool edits ``sys.path``."""

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# module of oasis_tf.cli -> the console script
COMMANDS = {"train": "oasis-train", "generate": "oasis-generate", "evaluate": "oasis-evaluate",
            "export": "oasis-export", "convert": "oasis-convert", "tflite": "oasis-tflite",
            "studio": "oasis-studio", "demo": "oasis-demo",
            "inspect_data": "oasis-inspect-data", "serving_client": "oasis-serving-client"}
BENCHMARKS = ("bench", "bench_data", "trace_cost")


def _console_scripts():
    """``{script: "module:function"}`` declared in setup.py (read, not run)."""
    text = (REPO / "setup.py").read_text()
    pairs = re.findall(r'\("([a-z-]+)", "([a-z_]+)"\)', text)
    assert 'f"oasis-{name}=oasis_tf.cli.{module}:run"' in text
    return {f"oasis-{name}": f"oasis_tf.cli.{module}:run" for name, module in pairs}


def test_setup_installs_one_console_script_per_command():
    assert _console_scripts() == {script: f"oasis_tf.cli.{module}:run"
                                  for module, script in COMMANDS.items()}


@pytest.mark.parametrize("module", [*COMMANDS, *BENCHMARKS])
def test_help_starts_with_examples_and_lists_every_flag(module, run_cli):
    command = importlib.import_module(f"oasis_tf.cli.{module}")
    result = run_cli(module, "--help")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    name = COMMANDS.get(module, f"python tools/{module}.py")
    assert lines[0].startswith(COMMANDS.get(module, ""))  # "oasis-train: train OASIS..."
    examples = [line.strip() for line in lines[1:12] if line.startswith("    ")
                and not line.strip().startswith("#")]
    assert examples and sum(e.startswith(name + " ") for e in examples) >= 1, lines[:12]
    listed = set(re.findall(r"^  --(\w+)", result.stdout, re.M))
    assert listed == {command.FLAGS[key].name for key in command.FLAGS}


def test_flag_mistakes_are_one_line_and_status_2(run_cli, tmp_path):
    result = run_cli("generate", "--generator", tmp_path / "g.keras", "--output_dir", tmp_path,
                     "--num_samplez", "2")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == ("oasis-generate: error: Unknown command line "
                                             "flag 'num_samplez'. Did you mean: num_samples ?")
    assert "--help" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("generate", "--output_dir", tmp_path, "--labels", tmp_path)
    assert result.returncode == 2 and "--generator" in result.stderr  # required
    result = run_cli("generate", "--generator", tmp_path / "g.keras", "--output_dir", tmp_path)
    assert result.returncode == 2 and "exactly one of --labels and --dataset" in result.stderr
    result = run_cli("train", "--resume", tmp_path, "--backup_dir", tmp_path)
    assert result.returncode == 2 and "not both" in result.stderr


def test_errors_are_one_line_unless_verbose(run_cli, tmp_path):
    missing = tmp_path / "nothing.keras"
    result = run_cli("export", "--generator", missing, "--export_dir", tmp_path / "e")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"oasis-export: error: model not found: {missing}"
    assert "Traceback" not in result.stderr and "--verbose" in result.stderr
    result = run_cli("export", "--generator", missing, "--export_dir", tmp_path / "e",
                     "--verbose")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "FileNotFoundError: model not found" in result.stderr


def test_version_names_the_package_in_use(run_cli):
    import oasis_tf

    result = run_cli("evaluate", "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == (f"oasis_tf {oasis_tf.__version__} "
                                     f"({Path(oasis_tf.__file__).parent})")


def _tool_files():
    return sorted(p for p in (REPO / "tools").glob("*.py"))


def test_tools_are_shims_of_the_commands():
    """Each tools/*.py but the official-code benchmark: a docstring, ``import sys``, one
    import of ``run`` from oasis_tf.cli and ``sys.exit(run())``."""
    for path in _tool_files():
        if path.name == "bench_official.py":
            continue
        tree = ast.parse(path.read_text())
        imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert len(imports) == 1 and imports[0].module.startswith("oasis_tf.cli."), path.name
        assert [a.name for a in imports[0].names] == ["run"], path.name
        assert len(tree.body) == 4, f"{path.name} is more than a shim"


def test_no_tool_edits_sys_path():
    for path in [*_tool_files(), *sorted((REPO / "oasis_tf" / "cli").glob("*.py"))]:
        assert "sys.path" not in path.read_text(), path
