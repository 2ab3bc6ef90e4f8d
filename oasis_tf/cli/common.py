"""What the ``oasis-*`` commands share: the flags several of them take, defined once,
and the runner that parses a command's flags and turns its errors into one line.

Each command keeps its flags in its own ``absl.flags.FlagValues`` (``new_flags``), so
that every command can be imported next to the others (the tests run them in one
process) and ``run(argv)`` can be called more than once. A command module reads::

    FLAGS = common.new_flags()
    common.define_official_checkpoint(FLAGS)
    flags.DEFINE_string("output_dir", None, "...", flag_values=FLAGS)

    def main(argv): ...

    def run(argv=None):
        return common.run_command("oasis-generate", __doc__, FLAGS, main, argv)

Every command takes ``--help`` (its docstring, which starts with examples, then its
flags), ``--version`` and ``--verbose`` (the traceback of an error instead of one line).

A full disk is one line for every command (``disk_full_message``): what could not be
written, where, the space free there and what to do (a ``DiskFullError`` of
``oasis_tf.fileio`` says it; a bare ``OSError`` ENOSPC from anywhere is worded the
same way).
"""

import sys
import textwrap
import traceback

from absl import flags

from oasis_tf.cli.standalone import parse_image_size

_HELP_FLAGS = ("--help", "-h", "--helpfull", "-help")


class UsageError(Exception):
    """A command was called with flags that do not go together (exit status 2)."""


def new_flags(version=True):
    """A command's own flag set, with ``--help``, ``--verbose`` and ``--version``.

    Args:
        version: define ``--version`` (oasis_tf's version); False for a command whose
            ``--version`` means something else (``oasis-export``: the export's version).
    """
    fv = flags.FlagValues()
    flags.DEFINE_bool("help", False, "Show this help and exit.", short_name="h",
                      flag_values=fv)
    flags.DEFINE_bool("verbose", False, "On an error, print the whole traceback instead "
                      "of one line.", flag_values=fv)
    if version:
        flags.DEFINE_bool("version", False, "Print oasis_tf's version and where it is "
                          "installed, and exit.", flag_values=fv)
    return fv


# ------------------------------------------------------------------ shared flags
MODEL_FORMS = ("a training run folder (its generator.keras, checked against its "
               "manifest), a checkpoint folder of a run, an export version folder "
               "(saved_model.pb), a .keras generator, or an official .pth/.pt/.npz "
               "state dict (with --image_size)")


def define_generator_source(fv, name="generator", required=True):
    """``--generator`` (or ``--model``): what to load a generator from (``MODEL_FORMS``)."""
    flags.DEFINE_string(name, None, f"The generator: {MODEL_FORMS}.", flag_values=fv)
    if required:
        flags.mark_flag_as_required(name, flag_values=fv)


def define_image_size(fv, help_text="Output size of an official state dict's generator: "
                      "H,W (e.g. 256,512 for Cityscapes) or one size."):
    """``--image_size``: N, H,W or HxW (``standalone.parse_image_size``)."""
    flags.DEFINE_string("image_size", None, help_text, flag_values=fv)


def define_num_classes(fv, help_text="Classes of an official state dict, including the "
                       "don't-care class 0 (semantic_nc)."):
    """``--num_classes``: a class count, the don't-care class 0 included."""
    flags.DEFINE_integer("num_classes", None, help_text, lower_bound=1, flag_values=fv)


def define_official_checkpoint(fv):
    """``--image_size``, ``--z_dim``, ``--num_classes``: what an official state dict
    does not say about its generator."""
    define_image_size(fv)
    flags.DEFINE_integer("z_dim", None, "Noise channels of an official state dict "
                         "(default 64).", flag_values=fv)
    define_num_classes(fv)


def official_checkpoint(fv):
    """``{"image_size": (H, W) or None, "z_dim", "num_classes"}`` from the flags of
    ``define_official_checkpoint``."""
    size = None
    if fv["image_size"].value:
        try:
            size = parse_image_size(fv["image_size"].value)
        except ValueError as error:
            raise UsageError(str(error)) from None
        size = (size, size) if isinstance(size, int) else size
    return {"image_size": size, "z_dim": fv["z_dim"].value,
            "num_classes": fv["num_classes"].value}


def _model_source(fv, name):
    """``(path, official-checkpoint arguments)`` of the flag ``name``."""
    from oasis_tf.inference import OFFICIAL_SUFFIXES

    path = fv[name].value
    official = official_checkpoint(fv)
    if str(path).lower().endswith(OFFICIAL_SUFFIXES) and official["image_size"] is None:
        raise UsageError(f"--image_size H,W is required for an official state dict "
                         f"(--{name} {path})")
    return path, official


def load_generator(fv, name="generator", checkpoint=None):
    """``(Keras generator, info)`` of ``oasis_tf.inference.load_generator`` for the flag
    ``name`` with the official-checkpoint flags (for commands that need the network)."""
    from oasis_tf.inference import load_generator as load

    path, official = _model_source(fv, name)
    return load(path, checkpoint=checkpoint, **official)


def load_pipeline(fv, name="generator", checkpoint=None, batch_size=8):
    """The ``OASISPipeline`` of the flag ``name`` with the official-checkpoint flags (for
    commands that make images)."""
    from oasis_tf.inference import OASISPipeline

    path, official = _model_source(fv, name)
    return OASISPipeline.from_pretrained(path, checkpoint=checkpoint, batch_size=batch_size,
                                         **official)


def define_data_root(fv, help_text="Data set folder."):
    flags.DEFINE_string("data_root", None, help_text, flag_values=fv)


def define_dataset(fv, default_split="val", dataset_help=None):
    """``--dataset``, ``--data_root``, ``--split``, ``--max_images``: label maps (and
    images) from a data set folder."""
    flags.DEFINE_string("dataset", None, dataset_help or "Data set layout: ade20k, "
                        "cityscapes, coco_stuff, folder or synthetic.", flag_values=fv)
    define_data_root(fv, "Data set folder of --dataset.")
    flags.DEFINE_string("split", default_split, "Split of the data set.", flag_values=fv)
    flags.DEFINE_integer("max_images", None, "At most this many images.", lower_bound=1,
                         flag_values=fv)


def define_output(fv, help_text, required=False):
    """``--output``: the file a command writes (its help says which)."""
    flags.DEFINE_string("output", None, help_text, flag_values=fv)
    if required:
        flags.mark_flag_as_required("output", flag_values=fv)


def define_overwrite(fv, help_text="Replace an existing output."):
    flags.DEFINE_bool("overwrite", False, help_text, flag_values=fv)


def define_labels(fv, help_text="A label PNG or a folder of label PNGs (single-channel class "
                  "ids).", required=False):
    """``--labels``: label maps as PNG files."""
    flags.DEFINE_string("labels", None, help_text, flag_values=fv)
    if required:
        flags.mark_flag_as_required("labels", flag_values=fv)


def define_seeds(fv, default=None, help_text="Noise seeds, e.g. 0,1,2."):
    flags.DEFINE_list("seeds", default, help_text, flag_values=fv)


def define_model_name(fv, help_text="The model's name in TF Serving (the folder under its "
                      "base path)."):
    flags.DEFINE_string("model_name", "oasis", help_text, flag_values=fv)


def define_address(fv, host, port, help_text):
    """``--host`` and ``--port`` (``help_text``: whose address: "serve on", "TF Serving")."""
    flags.DEFINE_string("host", host, f"Host of {help_text}.", flag_values=fv)
    flags.DEFINE_integer("port", port, f"Port of {help_text}.", flag_values=fv)


def define_precision(fv, default, help_text, several=False, extra=()):
    """``--precision``: a Keras dtype policy (``several``: a comma-separated list of
    them); ``extra``: more values this command takes ("auto")."""
    from oasis_tf.config.schema import MIXED_PRECISION_POLICIES

    choices = [*extra, *MIXED_PRECISION_POLICIES]
    text = f"{help_text} ({', '.join(choices)})"
    if not several:
        flags.DEFINE_enum("precision", default, choices, text, flag_values=fv)
        return
    flags.DEFINE_list("precision", default, text, flag_values=fv)
    flags.register_validator("precision", lambda values: all(v in choices for v in values),
                             f"--precision takes {', '.join(choices)}", flag_values=fv)


def define_batch(fv, default, help_text="Batch size."):
    """``--batch``: the batch of a benchmark's training step."""
    flags.DEFINE_integer("batch", default, help_text, lower_bound=1, flag_values=fv)


def define_output_dir(fv, help_text, required=True):
    flags.DEFINE_string("output_dir", None, help_text, flag_values=fv)
    if required:
        flags.mark_flag_as_required("output_dir", flag_values=fv)


def define_batch_size(fv, default, help_text="Images per generator call."):
    flags.DEFINE_integer("batch_size", default, help_text, lower_bound=1, flag_values=fv)


def define_seed(fv, default=0, help_text="Seed of the noise of the first image."):
    flags.DEFINE_integer("seed", default, help_text, flag_values=fv)


def define_overrides(fv):
    flags.DEFINE_multi_string("override", [], "Config override section.key=value, "
                              "e.g. train.lr_g=2e-4", flag_values=fv)


def define_config(fv, help_text):
    flags.DEFINE_string("config", None, help_text, flag_values=fv)


# ------------------------------------------------------------------------ runner
def help_text(doc, fv):
    """The command's docstring (examples first), then its flags in the order they were
    defined (``--help``, ``--version`` and ``--verbose`` last)."""
    ordered, seen = [], set()
    for key in fv:
        flag = fv[key]
        if id(flag) not in seen:
            seen.add(id(flag))
            ordered.append(flag)
    general = [f for f in ordered if f.name in ("help", "verbose", "version")
               and fv.find_module_defining_flag(f.name) == __name__]
    ordered = [f for f in ordered if f not in general] + general
    lines = [doc.strip("\n"), "", "Flags:"]
    for flag in ordered:
        name = f"--{flag.name}" + (f", -{flag.short_name}" if flag.short_name else "")
        text = flag.help
        if flag.default not in (None, [], False, ""):
            text += f" (default: {flag.default_as_str.strip(chr(39))})"
        lines.append(f"  {name}")
        lines.extend(textwrap.wrap(text, width=88, initial_indent="      ",
                                   subsequent_indent="      "))
    return "\n".join(lines) + "\n"


def run_command(name, doc, fv, main, argv=None):
    """Parses ``argv`` into ``fv`` and calls ``main(rest)``; returns the exit status.

    ``--help`` prints ``help_text``; a flag error or a ``UsageError`` prints one line
    and returns 2; any other error of ``main`` prints ``"<name>: error: <message>"``
    and returns 1 (the traceback with ``--verbose``); ``main``'s return value (an int)
    is the status otherwise.

    Args:
        name: the command's name (``oasis-generate``), the prefix of its messages.
        doc: the command's docstring.
        fv: its ``FlagValues`` (``new_flags``).
        main: ``fn(rest_of_argv) -> int or None``.
        argv: the command line with the program first (default ``sys.argv``).
    """
    argv = list(sys.argv if argv is None else argv)
    fv.unparse_flags()  # a second call in one process starts from the defaults
    words = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    if any(word in _HELP_FLAGS for word in words):
        sys.stdout.write(help_text(doc, fv))
        return 0
    if "--version" in words and fv.find_module_defining_flag("version") == __name__:
        from oasis_tf.training.startup import package_location  # (oasis-export's is its own)

        print(package_location())
        return 0
    try:
        rest = fv(argv)
    except flags.Error as error:
        print(f"{name}: error: {error}\nRun '{name} --help' for its flags.", file=sys.stderr)
        return 2
    try:
        status = main(rest)
    except UsageError as error:
        print(f"{name}: error: {error}\nRun '{name} --help' for its flags.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line for the user; --verbose for more
        full = disk_full_message(error)
        if fv["verbose"].value:
            traceback.print_exc()
        elif full is not None:
            print(f"{name}: error: {full}", file=sys.stderr)
        else:
            print(f"{name}: error: {error}", file=sys.stderr)
            print(f"{name}: (--verbose prints the traceback)", file=sys.stderr)
        return 1
    return int(status or 0)


def disk_full_message(error):
    """One line for an error that comes from a full disk (None for any other):
    the ``DiskFullError``'s own text, or for a bare ``OSError`` ENOSPC what it names,
    the space free there and to free some and run the command again."""
    from oasis_tf.fileio import DiskFullError, format_bytes, free_bytes, no_space_error

    full = no_space_error(error)
    if full is None:
        return None
    if isinstance(full, DiskFullError):
        return str(full.add_advice("free some space, then run the command again"))
    where = getattr(full, "filename", None)
    text = "no space left on device"
    if where:
        text += f": could not write {where} ({format_bytes(free_bytes(where))} free there)"
    return text + "; free some space, then run the command again"


def reject_arguments(rest):
    """A ``UsageError`` for words left after the flags (``main``'s ``argv[1:]``)."""
    if len(rest) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(rest[1:])}")
