"""oasis-studio: paint a label map in the browser and get images from a model.

    oasis-studio                                    # the newest runs/demo-NNNN (make demo)
    oasis-studio --model runs/demo-0001
    oasis-studio --model runs/demo-0001/export/oasis/1     # the SavedModel
    oasis-studio --model best_EMA.pth --image_size 256,512 --port 7861
    oasis-studio --host 0.0.0.0 --auth studio_users.txt   # other machines, with a login

(From a checkout, `make studio` or `python tools/studio.py` takes the same flags.)

--model: a run folder, a generator.keras, an export version folder (run through its
SavedModel signatures: exactly what TF Serving returns) or an official .pth (with
--image_size). Default: the newest runs/demo-NNNN under --runs_dir. The page is at
http://HOST:PORT; scripts call /generate with gradio_client:

    from gradio_client import Client, handle_file
    png_path = Client("http://127.0.0.1:7860").predict(
        handle_file("label.png"), 7, api_name="/generate")

Any --host but the loopback (127.0.0.1, localhost) needs a login: --auth FILE, one
user:password per line (or OASIS_STUDIO_AUTH=FILE); scripts then pass
Client(url, auth=(user, password)). Without one it refuses to start (exit status 2)
unless --no_auth is given on purpose. Served files and uploads are deleted once
--keep_minutes old. See docs/studio.md.
"""

import atexit
import os
import shutil
import sys
import tempfile

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
common.define_generator_source(FLAGS, "model", required=False)
common.define_official_checkpoint(FLAGS)
flags.DEFINE_string("runs_dir", "runs", "Where to look for the newest demo run when --model "
                    "is not given.", flag_values=FLAGS)
common.define_address(FLAGS, "127.0.0.1", 7860, "the page and its API")
flags.DEFINE_string("auth", None, "A file of logins, one user:password per line (default: "
                    "the file named by $OASIS_STUDIO_AUTH). Required for any --host but the "
                    "loopback.", flag_values=FLAGS)
flags.DEFINE_bool("no_auth", False, "Serve a --host other than the loopback without a "
                  "login, on purpose.", flag_values=FLAGS)
flags.DEFINE_float("keep_minutes", 10, "How long served images and uploads are kept on "
                   "disk (download links of the page work that long).", lower_bound=0.02,
                   flag_values=FLAGS)


def _logins():
    """The logins of --auth (or $OASIS_STUDIO_AUTH), None without; refuses a host
    other than the loopback without one (exit status 2), before any model loads."""
    from oasis_tf.studio.access import (AUTH_ENV, auth_file_warning, check_access,
                                        read_auth_file)

    path = FLAGS.auth or os.environ.get(AUTH_ENV) or None
    if path and FLAGS.no_auth:
        raise common.UsageError("give --auth or --no_auth, not both")
    auth = None
    if path:
        try:
            auth = read_auth_file(path)
        except (OSError, ValueError) as error:
            raise common.UsageError(str(error)) from None
        warning = auth_file_warning(path)
        if warning:
            print(f"studio: warning: {warning}", file=sys.stderr)
    try:
        check_access(FLAGS.host, auth, FLAGS.no_auth)
    except ValueError as error:
        raise common.UsageError(str(error)) from None
    return auth


def main(argv):
    common.reject_arguments(argv)
    auth = _logins()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # one folder for everything served (the studio's PNGs, Gradio's copies and the
    # uploads, unless GRADIO_TEMP_DIR says otherwise), removed when the studio stops
    workdir = tempfile.mkdtemp(prefix="oasis-studio-")
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(workdir, "gradio"))
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise RuntimeError("gradio is not installed: pip install 'oasis_tf[studio]'") from None
    from oasis_tf.inference import OASISPipeline
    from oasis_tf.studio import build_app, launch, newest_run

    model_path = FLAGS.model or newest_run(FLAGS.runs_dir)
    print(f"studio: loading {model_path} ...", flush=True)
    pipeline = OASISPipeline.from_pretrained(model_path, **common.official_checkpoint(FLAGS))
    if auth:
        print(f"studio: login required ({len(auth)} user(s) in the --auth file)", flush=True)
    elif FLAGS.no_auth:
        print(f"studio: --no_auth: {FLAGS.host} is served without a login", flush=True)
    print(f"studio: serving files from {workdir}; kept {FLAGS.keep_minutes:g} minutes",
          flush=True)
    launch(build_app(pipeline, workdir=workdir, keep_seconds=FLAGS.keep_minutes * 60),
           host=FLAGS.host, port=FLAGS.port, auth=auth, no_auth=FLAGS.no_auth)


def run(argv=None):
    """The console script ``oasis-studio``."""
    return common.run_command("oasis-studio", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
