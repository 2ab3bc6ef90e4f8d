"""Shared pytest set-up for oasis_tf."""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from reference import find_reference_dir, skip_message  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _no_tf32():
    """Parity tests need true float32 convolutions; TF32 moves them by ~5e-3."""
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield


@pytest.fixture(scope="module")
def no_grappler():
    """Grappler (TensorFlow's graph optimizer) off for a module's in-process runs.

    Each tiny ``train()`` / ``fit`` builds a fresh model and optimizes its traced step;
    Grappler's pass over that graph is ~25% of such a run (measured 104 -> 76 s for
    test_training_run.py). Used by modules whose in-process runs are compared only
    with each other, none about Grappler (training runs, checkpoints, precision, XLA);
    `tools/train.py` in the subprocess tests, the demo, the exports and the reference
    parity tests keep it."""
    import tensorflow as tf

    previous = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": previous.get("disable_meta_optimizer", False)})


@pytest.fixture(scope="module")
def eager_steps(no_grappler):
    """Every ``tf.function`` of a module's in-process runs executes eagerly.

    For modules that check what a run leaves in its folder (checkpoints, resume,
    logs, the NaN stop), not the traced step: a tiny 4-step ``train()`` takes ~7 s
    eagerly against ~13 s traced (10 s of it tracing), and the state digest it ends
    in is the same to the last bit (eager ops are the traced graph's kernels without
    Grappler, which it turns off too: ``no_grappler``). tf.data pipelines are traced as always. The
    traced step itself runs in the ``tools/train.py`` subprocesses, the demo, the
    2-replica check (test_distributed.py), test_multiworker.py, test_xla.py,
    test_precision.py and the PyTorch-reference parity tests."""
    import tensorflow as tf

    previous = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(previous)


@pytest.fixture
def run_cli(capsys):
    """``run_cli("generate", *args)``: an ``oasis-*`` command in this process (its
    ``run(argv)``, as the console script calls it), returning a
    ``subprocess.CompletedProcess`` with the exit status and what it printed. Saves the
    ~4 s of importing TensorFlow that a subprocess pays; tests whose point is a separate
    process (killed runs, several workers, the installed wheel) start one instead."""
    import importlib
    import subprocess

    def run(module, *args):
        command = importlib.import_module(f"oasis_tf.cli.{module}")
        argv = [f"oasis-{module}", *map(str, args)]
        capsys.readouterr()
        status = command.run(argv)
        printed = capsys.readouterr()
        return subprocess.CompletedProcess(argv, status, printed.out, printed.err)

    return run


@pytest.fixture(scope="session")
def reference_dir():
    """The reference fixture folder (official PyTorch outputs); skips when absent."""
    path = find_reference_dir()
    if path is None:
        pytest.skip(skip_message())
    return path


# The modules run longest first (`--no-loadscope-reorder` keeps the order), so that no
# long module starts last while the other worker idles. Their seconds come from
# tests/durations.json, which `make test-durations` writes (`--store-durations`: the
# setup, call and teardown time of every test of a file, summed over one `make test`);
# a module it does not list counts 0 and runs last. The numbers only order the
# modules, they assert nothing. Slow tests carry `pytest.mark.slow` in their modules.
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser):
    parser.addoption("--store-durations", metavar="PATH", default=None,
                     help="write the seconds each test module took (setup + call + "
                          "teardown, summed) to PATH as JSON, longest first")


def _module_seconds():
    try:
        return json.loads(DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _longest_modules_first(items):
    """Stable sort by the recorded module seconds, descending: tests of one module stay
    together and in their order. The two modules that start first run side by side
    (one per worker): two that each start several TensorFlow processes (marked
    ``processes``) would share 2 cores four ways, so the second place goes to the
    longest module without that mark."""
    seconds = _module_seconds()
    items.sort(key=lambda item: -seconds.get(item.path.name, 0))
    modules = list(dict.fromkeys(item.path.name for item in items))
    heavy = {item.path.name for item in items if item.get_closest_marker("processes")}
    if len(modules) > 2 and modules[0] in heavy and modules[1] in heavy:
        light = next((m for m in modules[2:] if m not in heavy), None)
        if light is not None:
            modules.remove(light)
            modules.insert(1, light)
            rank = {m: i for i, m in enumerate(modules)}
            items.sort(key=lambda item: rank[item.path.name])


_TOTALS = {}


def pytest_runtest_logreport(report):
    """Adds up the time of every test phase per module (on the xdist controller too)."""
    module = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    _TOTALS[module] = _TOTALS.get(module, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--store-durations")
    if path and not hasattr(session.config, "workerinput"):  # the controller writes
        ordered = dict(sorted(((k, round(v)) for k, v in _TOTALS.items()),
                              key=lambda kv: -kv[1]))
        Path(path).write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")


def pytest_collection_modifyitems(config, items):
    """Orders the modules longest first; skips tests marked `gpu` where TensorFlow sees
    no GPU."""
    _longest_modules_first(items)
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    skip = pytest.mark.skip(reason="needs a GPU; TensorFlow sees none")
    for item in gpu_items:
        item.add_marker(skip)
