"""oasis-studio: paint a label map in the browser and get images from a model.

    oasis-studio                                    # the newest runs/demo-NNNN (make demo)
    oasis-studio --model runs/demo-0001
    oasis-studio --model runs/demo-0001/export/oasis/1     # the SavedModel
    oasis-studio --model best_EMA.pth --image_size 256,512 --port 7861

(From a checkout, `make studio` or `python tools/studio.py` takes the same flags.)

--model: a run folder, a generator.keras, an export version folder (run through its
SavedModel signatures: exactly what TF Serving returns) or an official .pth (with
--image_size). Default: the newest runs/demo-NNNN under --runs_dir. The page is at
http://HOST:PORT; scripts call /generate with gradio_client:

    from gradio_client import Client, handle_file
    png_path = Client("http://127.0.0.1:7860").predict(
        handle_file("label.png"), 7, api_name="/generate")

See docs/studio.md.
"""

import os
import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
common.define_generator_source(FLAGS, "model", required=False)
common.define_official_checkpoint(FLAGS)
flags.DEFINE_string("runs_dir", "runs", "Where to look for the newest demo run when --model "
                    "is not given.", flag_values=FLAGS)
flags.DEFINE_string("host", "127.0.0.1", "Address to serve on.", flag_values=FLAGS)
flags.DEFINE_integer("port", 7860, "Port to serve on.", flag_values=FLAGS)


def main(argv):
    common.reject_arguments(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise RuntimeError("gradio is not installed: pip install 'oasis_tf[studio]'") from None
    from oasis_tf.inference import OASISPipeline
    from oasis_tf.studio import build_app, launch, newest_run

    model_path = FLAGS.model or newest_run(FLAGS.runs_dir)
    print(f"studio: loading {model_path} ...", flush=True)
    pipeline = OASISPipeline.from_pretrained(model_path, **common.official_checkpoint(FLAGS))
    launch(build_app(pipeline), host=FLAGS.host, port=FLAGS.port)


def run(argv=None):
    """The console script ``oasis-studio``."""
    return common.run_command("oasis-studio", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
