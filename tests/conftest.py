"""Shared pytest set-up for oasis_tf."""

import os

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


# Tests that take seconds to minutes on 2 CPU cores (a full `make test` with
# --durations, 2026-12): marked `slow` here, so that `make test-fast`
# (-m "not slow") stays under 3 minutes. Whole modules where a module fixture (a
# traced training step, an export, a conversion, the reference networks) is the cost;
# else the tests by name (all their parameters). New slow tests can also carry
# @pytest.mark.slow themselves.
SLOW_MODULES = {
    "test_export.py", "test_multiworker.py", "test_precision.py", "test_serving_client.py",
    "test_tflite.py", "test_train_step.py", "test_train_step_configs.py", "test_xla.py",
}
SLOW_TESTS = {
    "test_bench.py": {"test_bench_prints_one_json_line_per_case_with_a_profile"},
    "test_convert.py": {"test_tool_converts_and_the_output_reloads",
                        "test_tool_num_classes_must_agree_with_the_weights",
                        "test_tool_writes_nothing_on_a_bad_checkpoint"},
    "test_demo.py": {"test_run_demo_tiny"},
    "test_distributed.py": {"test_fit_trains_a_tiny_model_and_refreshes_the_ema_statistics",
                            "test_two_replicas_equal_one_device_with_the_same_global_batch",
                            "test_two_replicas_equal_one_device_with_the_vgg_loss"},
    "test_evaluate.py": {"test_synthetic_segmenter_above_chance_and_cached",
                         "test_tool_end_to_end_on_reference_generator"},
    "test_fid_callback.py": {"test_fid_every_n_steps_best_checkpoint_and_curve"},
    "test_generate.py": {"test_dataset_label_maps_synthetic", "test_tool_refuses_bad_flags",
                         "test_tool_samples_resample_and_interpolate"},
    "test_init_from.py": {"test_other_class_count_reinitialises_only_the_class_layers",
                          "test_same_class_count_keeps_every_tensor_then_fine_tunes"},
    "test_init_gain.py": {"test_kernels_follow_the_gain_and_the_ema_copies_them",
                          "test_same_seed_same_weights_and_official_default"},
    "test_layers.py": {"test_sync_batch_norm_over_two_replicas_equals_one_device"},
    "test_networks.py": {"test_generator_output_and_noise_forms", "test_save_and_restore",
                         "test_save_network_refuses_bad_paths"},
    "test_optimizers.py": {"test_matches_torch_adam",
                           "test_mirrored_strategy_matches_single_device"},
    "test_reference_parity.py": {"test_discriminator_logits", "test_inferred_architecture"},
    "test_sn_warmup.py": {"test_build_model_warmup_sets_sigma_of_every_network",
                          "test_default_is_no_warmup_and_bit_identical"},
    "test_studio.py": {"test_browser_paint_and_generate", "test_served_files_do_not_fill_the_disk"},
    "test_step_order.py": {"test_sequential_gradients_equal_the_joint_gradient"},
    "test_checkpoint_integrity.py": {
        "test_restart_after_damage_ends_like_the_uninterrupted_run",
        "test_stop_signals_checkpoint_the_step_reached_and_the_run_ends_as_if_never_stopped",
        "test_a_full_disk_is_one_line_and_the_last_checkpoint_stays"},
    "test_training_run.py": {"test_checkpoint_round_trip_restores_networks_and_optimizers",
                             "test_nan_loss_stops_training_and_keeps_last_good_checkpoint",
                             "test_resume_may_switch_the_learning_rate_warmup_on_or_off"},
    "test_run_folder.py": {"test_killed_run_resumes_from_another_folder_then_evaluates_and_exports",
                           "test_dry_run_creates_no_file",
                           "test_changing_the_data_root_on_resume_is_explicit_and_logged"},
}


def _mark_slow(items):
    for item in items:
        module = item.path.name
        name = getattr(item, "originalname", item.name)
        if module in SLOW_MODULES or name in SLOW_TESTS.get(module, ()):
            item.add_marker(pytest.mark.slow)


# Seconds each module took in a fresh-clone `make test` on 2 cores (two xdist workers,
# without the reference fixtures; `--durations=0` summed per file, 2026-12), rounded. The
# modules run longest first (`--no-loadscope-reorder` keeps this order), so that no
# long module starts last while the other worker idles. A module not listed counts 0
# and runs after the listed ones; the numbers only order, they assert nothing.
MODULE_SECONDS = {
    "test_multiworker.py": 121, "test_distributed.py": 99, "test_xla.py": 68,
    # measured 110-119 s; listed lower so that it does not start beside
    # test_multiworker.py: their subprocesses together on 2 cores took 140 + 143 s
    # against 64 + 125 s with test_distributed.py beside it
    "test_run_folder.py": 66,
    "test_train_step_configs.py": 62, "test_precision.py": 56,
    "test_export.py": 45, "test_serving_client.py": 42, "test_gpu_bench.py": 37,
    "test_bench.py": 36, "test_demo.py": 36,
    # + the stop, finish and full-disk runs (issue 25; estimated from runs beside others)
    "test_checkpoint_integrity.py": 60,
    "test_convert.py": 34,
    # + a second studio with a login and 200 requests (issue 25; estimated likewise)
    "test_studio.py": 50, "test_generate.py": 33,
    "test_tflite.py": 29, "test_training_run.py": 20, "test_float32_copy.py": 15,
    "test_evaluate.py": 14,
    # with the reference fixtures (CI) these two take longer; where the fixtures are
    # absent they mostly skip and end at once
    "test_train_step.py": 35, "test_init_from.py": 30,
}


def _longest_modules_first(items):
    """Stable sort by MODULE_SECONDS, descending: tests of one module stay together
    and in their order."""
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.path.name, 0))


def pytest_collection_modifyitems(config, items):
    """Orders the modules longest first; marks the slow tests (SLOW_MODULES,
    SLOW_TESTS); skips tests marked `gpu` where TensorFlow sees no GPU."""
    _longest_modules_first(items)
    _mark_slow(items)
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    skip = pytest.mark.skip(reason="needs a GPU; TensorFlow sees none")
    for item in gpu_items:
        item.add_marker(skip)
