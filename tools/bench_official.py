"""Benchmark the OFFICIAL PyTorch OASIS code like tools/bench.py benchmarks ours.

    git clone https://github.com/boschresearch/OASIS /path/to/OASIS
    python tools/bench_official.py --official_root /path/to/OASIS --config small,ade20k

The official code is not part of this repository and is never copied into it: it is
imported from the checkout named by ``--official_root`` (its files are used unedited).
Each configuration runs in its own process (peak memory not mixed) and prints one JSON
line with the same measurements as tools/bench.py:

* ``sec_per_iter`` (and ``sec_per_iter_min``): median (min) seconds of one training
  iteration of the official train.py loop over ``--iters`` iterations after
  ``--warmup``: ``models.preprocess_input`` (one-hot), ``netG.zero_grad()``,
  ``OASIS_model(..., "losses_G")``, ``loss_G.backward()``, ``optimizerG.step()``,
  ``netD.zero_grad()``, ``OASIS_model(..., "losses_D")`` (fake, real and LabelMix
  discriminator passes), ``loss_D.backward()``, ``optimizerD.step()``, then the weight
  part of utils/utils.py ``update_EMA``;
* ``gen_images_per_sec``: images/s of ``OASIS_model(None, label, "generate", None)``
  (netEMA in eval mode under ``torch.no_grad``, noise drawn inside the official
  generator, ``preprocess_input`` included), batch of the configuration, median over
  ``--gen_iters`` after one warm-up call;
* ``peak_memory_mb``: peak RSS of the process (``resource`` maxrss) on the CPU; on a
  GPU (``--device cuda``) ``torch.cuda.max_memory_allocated`` over the timed
  iterations and generator calls, also reported as ``peak_device_memory_mb``;
* ``train_images_per_sec``: batch / ``sec_per_iter``.

Configurations as tools/bench.py's (``small``, ``ade20k``, and the paper's GPU
training: ``ade20k_gpu`` 256x256 batch 8, ``cityscapes_gpu`` 256x512 batch 5 with the
official Cityscapes options: 35 classes, aspect ratio 2, lr_g 4e-4, LabelMix 5, EMA
0.999); ``--batch``, ``--image_size`` (N or HxW) and ``--num_classes`` change them.
The official code trains in float32 only (no mixed precision in it), and so does this.
On a GPU the model runs as the official train.py does with one GPU id
(``--gpu_ids 0``: ``DataParallel`` over one device, which calls the module directly;
PyTorch's defaults for cuDNN and TF32, as the official code leaves them).

The networks, losses, LabelMix, parameter initialisation (``OASIS_model.init_networks``)
and EMA copy are the official ones (``models/models.py`` ``OASIS_model``,
``put_on_multi_gpus``, ``preprocess_input``; ``models/losses.py`` ``losses_computer``),
built from a minimal ``opt`` (see ``make_opt``) with the official defaults of config.py
(Adam betas (0, 0.999), lr_g 1e-4, lr_d 4e-4, lambda_labelmix 10, EMA_decay 0.9999, class
balancing on, 3D noise on, spectral norm on, ``param_free_norm="syncbatch"``, no VGG loss)
and ADE20K's label layout (``label_nc = num_classes - 1``, class 0 = "don't care",
``semantic_nc = num_classes``, so 151 classes give a 152-channel N+1 discriminator
output, as with tools/bench.py's ``num_classes=151``).

Substitutions (needed to import the official files unedited on a CPU-only machine
without torchvision/matplotlib; none changes the computation):

* ``models.sync_batchnorm`` (the vendored Synchronized-BatchNorm-PyTorch package,
  imported by models/norms.py and models/models.py) is replaced by a stub module whose
  ``SynchronizedBatchNorm2d`` is ``nn.BatchNorm2d`` (same eps 1e-5, momentum 0.1,
  running statistics, ``affine=False`` as norms.py asks) with the forward of the
  original's single-device path: ``F.batch_norm(input, running_mean, running_var,
  weight, bias, training, momentum, eps)``. The original takes exactly that path
  whenever it is not replicated by ``DataParallelWithCallback`` onto several GPUs
  (one GPU or CPU), so the operations, FLOPs and results are identical; the stub just
  skips the ``num_batches_tracked`` increment that ``nn.BatchNorm2d.forward`` would add,
  as the original does. ``DataParallelWithCallback`` (used only when
  ``gpu_ids != "-1"``) is ``torch.nn.DataParallel``, which it subclasses only to add a
  callback when it replicates the model onto several GPUs (it raises for more than
  one device).
* ``models.vggloss`` (imports torchvision) is replaced by a stub whose ``VGG19`` raises
  if built: the VGG loss is off (official default, ``add_vgg_loss=False``).
* utils/utils.py is not imported (it needs matplotlib and a data loader); its
  ``update_EMA`` weight update is reproduced by ``update_ema_weights`` with the same
  state_dict() calls per key.

Not timed, as in tools/bench.py: data loading, logging/plots (``losses_saver``,
``image_saver``, ``timer``), checkpoint saving, FID, and update_EMA's batch-norm
statistics refresh (50 no-grad netEMA passes every ``freq_print``=1000 iterations).
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import types


def _load_standalone():
    """``oasis_tf/cli/standalone.py`` of this checkout, loaded by its path: the benchmark
    configurations and the size parsing that tools/bench.py uses too. Importing the
    package would import TensorFlow, which this benchmark neither needs nor expects."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "oasis_tf",
                        "cli", "standalone.py")
    spec = importlib.util.spec_from_file_location("oasis_tf_cli_standalone", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SHARED = _load_standalone()
parse_image_size = _SHARED.parse_image_size
resolve_config = _SHARED.resolve_config
# tools/bench.py's configurations that the official code can build: its discriminator
# has a fixed width (base 128).
CONFIGS = {name: c for name, c in _SHARED.CONFIGS.items() if c["d_channels"] == 128}
CLONE_HINT = "git clone https://github.com/boschresearch/OASIS"
NEEDED_FILES = ("models/generator.py", "models/discriminator.py", "models/norms.py",
                "models/losses.py", "models/models.py")
NORM_NOTE = ("SynchronizedBatchNorm2d -> nn.BatchNorm2d(affine=False) running the "
             "original's single-device F.batch_norm path")


def check_official_root(path):
    """Returns the absolute path of an official OASIS checkout; ValueError when `path`
    is empty, missing, or lacks the model files."""
    if not path:
        raise ValueError(
            "--official_root is required: the folder of a checkout of the official "
            f"OASIS code (get one with `{CLONE_HINT}`)")
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(root):
        raise ValueError(f"--official_root {root} does not exist; it must be a checkout of "
                         f"the official OASIS code: `{CLONE_HINT}` and pass its folder")
    missing = [f for f in NEEDED_FILES if not os.path.isfile(os.path.join(root, f))]
    if missing:
        raise ValueError(f"--official_root {root} lacks {', '.join(missing)}; it must be a "
                         f"checkout of the official OASIS code: `{CLONE_HINT}` and pass "
                         "its folder")
    return root


def official_commit(root):
    """The checkout's commit read from .git (no git command run), or None."""
    git = os.path.join(root, ".git")
    try:
        with open(os.path.join(git, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        ref_file = os.path.join(git, ref)
        if os.path.isfile(ref_file):
            with open(ref_file, encoding="utf-8") as f:
                return f.read().strip()
        with open(os.path.join(git, "packed-refs"), encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        pass
    return None


def make_opt(config, gpu_ids="-1"):
    """The `opt` fields the official models/*.py read, with config.py's training
    defaults (label layout of ADE20K and Cityscapes: label_nc + the "don't care"
    class 0; the official generator takes the width from crop_size and the height
    from the aspect ratio, as its Cityscapes loader sets them).

    Args:
        config: a name of CONFIGS or a dict like its values (``resolve_config``).
        gpu_ids: the official ``--gpu_ids`` ("-1": CPU, "0": the first GPU).
    """
    c = CONFIGS[config] if isinstance(config, str) else config
    height, width = _SHARED.height_width(c["image_size"])
    dataset = c.get("dataset", "ade20k")
    cityscapes = dataset == "cityscapes"  # config.py set_dataset_default_lm
    return argparse.Namespace(
        name="bench_official", phase="train", gpu_ids=gpu_ids, ddp_apex=False, seed=42,
        checkpoints_dir="./checkpoints", continue_train=False, which_iter="latest",
        dataset_mode=dataset, batch_size=c["batch"],
        label_nc=c["num_classes"] - 1, contain_dontcare_label=True,
        semantic_nc=c["num_classes"], crop_size=width, load_size=width,
        aspect_ratio=width / height,
        num_res_blocks=6, channels_G=c["g_channels"], channels_D=64,
        param_free_norm="syncbatch", spade_ks=3, no_spectral_norm=False,
        no_3dnoise=False, z_dim=64, no_EMA=False,
        EMA_decay=0.999 if cityscapes else 0.9999,
        beta1=0.0, beta2=0.999, lr_g=0.0004 if cityscapes else 0.0001, lr_d=0.0004,
        add_vgg_loss=False, lambda_vgg=10.0, no_balancing_inloss=False,
        no_labelmix=False, lambda_labelmix=5.0 if cityscapes else 10.0,
        freq_print=1000, freq_save_ckpt=20000, freq_save_latest=10000,
        freq_smooth_loss=250, freq_save_loss=2500, freq_fid=5000)


def import_official(root):
    """Imports the checkout's models.models and models.losses (files unedited), with the
    stub sync_batchnorm and vggloss modules described in the module docstring."""
    import torch.nn as nn
    import torch.nn.functional as F

    for name in list(sys.modules):
        if name == "models" or name.startswith("models."):
            raise RuntimeError(f"a module named {name!r} is already imported")
    pkg = types.ModuleType("models")
    pkg.__path__ = [os.path.join(root, "models")]
    sys.modules["models"] = pkg

    class SynchronizedBatchNorm2d(nn.BatchNorm2d):
        """The single-device (non-replicated) path of the original class."""

        def forward(self, input):
            return F.batch_norm(input, self.running_mean, self.running_var, self.weight,
                                self.bias, self.training, self.momentum, self.eps)

    def DataParallelWithCallback(module, device_ids=None, **kwargs):
        if device_ids is None or len(device_ids) != 1:
            raise RuntimeError("multi-GPU DataParallel is not part of this benchmark "
                               f"(device_ids {device_ids}); it runs one GPU")
        return nn.DataParallel(module, device_ids=device_ids, **kwargs)

    sync_bn = types.ModuleType("models.sync_batchnorm")
    sync_bn.SynchronizedBatchNorm2d = SynchronizedBatchNorm2d
    sync_bn.DataParallelWithCallback = DataParallelWithCallback

    class VGG19(nn.Module):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("the VGG loss (torchvision) is not part of this benchmark")

    vggloss = types.ModuleType("models.vggloss")
    vggloss.VGG19 = VGG19
    for mod in (sync_bn, vggloss):
        sys.modules[mod.__name__] = mod
        setattr(pkg, mod.__name__.split(".")[1], mod)

    import importlib

    models = importlib.import_module("models.models")
    losses = importlib.import_module("models.losses")
    for mod in (models, losses):
        if not os.path.abspath(mod.__file__).startswith(root + os.sep):
            raise RuntimeError(f"{mod.__name__} came from {mod.__file__}, not {root}")
    return models, losses


def update_ema_weights(model, opt):
    """utils/utils.py update_EMA, weight update: for each key of netEMA's state dict
    (parameters, spectral-norm u/v, batch-norm buffers), ema = ema*decay + g*(1-decay),
    with the official one netEMA.state_dict() per read and per write and one
    netG.state_dict() per key."""
    import torch

    module = model.module
    decay = opt.EMA_decay
    with torch.no_grad():
        for key in module.netEMA.state_dict():
            ema_value = module.netEMA.state_dict()[key].data
            g_value = module.netG.state_dict()[key].data
            module.netEMA.state_dict()[key].data.copy_(ema_value * decay + g_value * (1 - decay))


def resolve_device(device):
    """"auto" -> "cuda" where torch sees a GPU, else "cpu"; "cuda" without one raises."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no GPU (torch.cuda.is_available() "
                           f"is False; torch {torch.__version__})")
    return device


def run_case(name, root, iters, warmup, gen_iters, threads, config=None, device="cpu"):
    """One configuration in this process; returns the result dict.

    Args:
        config: the configuration dict (default ``CONFIGS[name]``; ``resolve_config``).
        device: "cpu", "cuda" or "auto".
    """
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    device = resolve_device(device)
    cuda = device == "cuda"
    models, losses = import_official(root)
    c = config or CONFIGS[name]
    opt = make_opt(c, gpu_ids="0" if cuda else "-1")
    torch.manual_seed(0)

    # train.py: create losses, model (OASIS_model: netG, netD, init, netEMA copy), optimizers
    losses_computer = losses.losses_computer(opt)
    model = models.OASIS_model(opt)
    model = models.put_on_multi_gpus(model, opt)
    optimizer_g = torch.optim.Adam(model.module.netG.parameters(), lr=opt.lr_g,
                                   betas=(opt.beta1, opt.beta2))
    optimizer_d = torch.optim.Adam(model.module.netD.parameters(), lr=opt.lr_d,
                                   betas=(opt.beta1, opt.beta2))

    # Inputs as tools/bench.py (same generator and draws), in the official layout: image
    # NCHW in [-1, 1], label map (B, 1, H, W) float as the official data sets give it.
    rng = np.random.default_rng(0)
    b, s = c["batch"], c["image_size"]
    h, w = _SHARED.height_width(s)
    coarse = rng.integers(0, c["num_classes"], (b, h // 8, w // 8))
    image = torch.from_numpy(np.ascontiguousarray(
        rng.uniform(-1, 1, (b, h, w, 3)).astype(np.float32).transpose(0, 3, 1, 2)))
    label_map = torch.from_numpy(
        np.repeat(np.repeat(coarse, 8, 1), 8, 2)[:, None].astype(np.float32))

    def train_iteration():
        # the body of train.py's loop (logging, saving and FID left out)
        # (preprocess_input moves both to the GPU, as in train.py)
        image_t, label_t = models.preprocess_input(opt, {"image": image, "label": label_map})
        model.module.netG.zero_grad()
        loss_g, losses_g = model(image_t, label_t, "losses_G", losses_computer)
        loss_g, losses_g = loss_g.mean(), [l.mean() if l is not None else None for l in losses_g]
        loss_g.backward()
        optimizer_g.step()
        model.module.netD.zero_grad()
        loss_d, losses_d = model(image_t, label_t, "losses_D", losses_computer)
        loss_d, losses_d = loss_d.mean(), [l.mean() if l is not None else None for l in losses_d]
        loss_d.backward()
        optimizer_d.step()
        if not opt.no_EMA:
            update_ema_weights(model, opt)
        return float(loss_d)

    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        train_iteration()
    warmup_s = time.perf_counter() - start
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        train_iteration()
        times.append(time.perf_counter() - t)

    # test.py-style generation: netEMA in eval mode (the model's "generate" branch runs
    # it under torch.no_grad). model.eval() would recurse (model.module is model on CPU).
    model.module.netEMA.eval()

    def generate():
        _, label_t = models.preprocess_input(opt, {"image": image, "label": label_map})
        with torch.no_grad():
            fake = model(None, label_t, "generate", None)
        if cuda:
            torch.cuda.synchronize()  # the time of the images, not of the launches
        return fake

    generate()
    gen_times = []
    for _ in range(gen_iters):
        t = time.perf_counter()
        generate()
        gen_times.append(time.perf_counter() - t)

    def n_params(net):
        return sum(p.numel() for p in net.parameters())

    gpu = {}
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
        gpu = {"device_name": torch.cuda.get_device_name(0),
               "peak_device_memory_mb": round(peak, 1)}
    return {"implementation": "official_pytorch", "config": name, "batch": b,
            "image_size": s if isinstance(s, int) else list(s),
            "num_classes": c["num_classes"], "precision": "float32",
            "sec_per_iter": round(statistics.median(times), 4) if times else None,
            "train_images_per_sec": (round(b / statistics.median(times), 3)
                                     if times else None),
            "sec_per_iter_min": round(min(times), 4) if times else None, "iters": iters,
            "warmup_sec": round(warmup_s, 1),
            "gen_images_per_sec": round(b / statistics.median(gen_times), 3) if gen_times else None,
            "peak_memory_mb": (gpu["peak_device_memory_mb"] if cuda
                               else round(_SHARED.peak_rss_mb(), 1)),
            "device": "GPU" if cuda else "CPU", **gpu,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "g_params": n_params(model.module.netG), "d_params": n_params(model.module.netD),
            "norm": NORM_NOTE, "official_root": root, "official_commit": official_commit(root)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Benchmark the official PyTorch OASIS (boschresearch/OASIS) like "
                    "tools/bench.py; one JSON line per configuration.")
    parser.add_argument("--official_root", default=None,
                        help=f"a checkout of the official code ({CLONE_HINT})")
    parser.add_argument("--config", default="small",
                        help=f"comma-separated named configurations: {', '.join(CONFIGS)}")
    parser.add_argument("--iters", type=int, default=10, help="timed training iterations")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed training iterations first (at least 1)")
    parser.add_argument("--gen_iters", type=int, default=10, help="timed generator calls")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size instead of the configuration's")
    parser.add_argument("--image_size", default=None,
                        help="image size N or HxW instead of the configuration's")
    parser.add_argument("--num_classes", type=int, default=None,
                        help="number of classes (with the don't-care class 0) instead of "
                             "the configuration's")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                        help="where the official code runs (auto: cuda when torch sees a GPU)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads (intra-op threads)")
    parser.add_argument("--output", default=None, help="also append the JSON lines here")
    parser.add_argument("--print_opt", action="store_true",
                        help="print each configuration's official `opt` as JSON and exit "
                             "(nothing imported from the checkout, no torch)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.config = [name.strip() for name in args.config.split(",") if name.strip()]
    unknown = [name for name in args.config if name not in CONFIGS]
    if unknown or not args.config:
        parser.error(f"--config: unknown {unknown or 'empty'}; choose from {list(CONFIGS)}")
    if min(args.iters, args.warmup, args.gen_iters) < 0 or args.threads < 1:
        parser.error("--iters, --warmup, --gen_iters must be >= 0 and --threads >= 1")
    if (args.batch is not None and args.batch < 1) or (
            args.num_classes is not None and args.num_classes < 2):
        parser.error("--batch must be >= 1 and --num_classes >= 2")
    if args.image_size is not None:
        try:
            args.image_size = parse_image_size(args.image_size)
        except ValueError as error:
            parser.error(str(error))
    try:
        args.official_root = check_official_root(args.official_root)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.print_opt:
        for name in args.config:
            config = resolve_config(name, args.batch, args.image_size, args.num_classes)
            gpu_ids = "0" if args.device == "cuda" else "-1"
            print(json.dumps({"config": name, **vars(make_opt(config, gpu_ids=gpu_ids))}))
        return
    if args.child:
        config = resolve_config(args.config[0], args.batch, args.image_size,
                                args.num_classes)
        result = run_case(args.config[0], args.official_root, args.iters, args.warmup,
                          args.gen_iters, args.threads, config=config, device=args.device)
        print("BENCH " + json.dumps(result), flush=True)
        return
    for name in args.config:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--config", name,
               "--official_root", args.official_root, "--iters", str(args.iters),
               "--warmup", str(args.warmup), "--gen_iters", str(args.gen_iters),
               "--threads", str(args.threads), "--device", args.device]
        size = args.image_size
        cmd += [f"--{key}={value}" for key, value in (
            ("batch", args.batch), ("num_classes", args.num_classes),
            ("image_size", size if size is None or isinstance(size, int)
             else f"{size[0]}x{size[1]}")) if value is not None]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("BENCH ")]
        if proc.returncode or not lines:
            result = {"implementation": "official_pytorch", "config": name,
                      "error": (proc.stderr or proc.stdout)[-1500:]}
        else:
            result = json.loads(lines[-1][len("BENCH "):])
        line = json.dumps(result)
        print(line, flush=True)
        if args.output:
            with open(args.output, "a", encoding="utf-8") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
