"""OASIS Studio: paint a label map in the browser and get images from a model.

    make studio                                   # the newest `make demo` run
    python tools/studio.py --model runs/demo-0001
    python tools/studio.py --model runs/demo-0001/export/oasis/1   # the SavedModel
    python tools/studio.py --model best_EMA.pth --image_size 256,512 --port 7861

``--model``: a run folder, a ``generator.keras``, an export version folder (run
through its SavedModel signatures: exactly what TF Serving returns) or an official
``.pth`` (with ``--image_size``). Default: the newest ``runs/demo-NNNN``. The page
is at ``http://HOST:PORT``; scripts call ``/generate`` with ``gradio_client``:

    from gradio_client import Client, handle_file
    png_path = Client("http://127.0.0.1:7860").predict(
        handle_file("label.png"), 7, api_name="/generate")

See docs/studio.md.
"""

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # running from a checkout without an install
    sys.path.insert(0, str(REPO))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="run folder, generator.keras, export "
                        "version folder or official .pth (default: newest runs/demo-NNNN)")
    parser.add_argument("--runs_dir", default=str(REPO / "runs"),
                        help="where to look for the newest demo run (default <repo>/runs)")
    parser.add_argument("--image_size", default=None, help="H,W (or one size) of an "
                        "official .pth")
    parser.add_argument("--z_dim", type=int, default=None, help="noise channels of an "
                        "official .pth (default 64)")
    parser.add_argument("--num_classes", type=int, default=None, help="classes of an "
                        "official .pth")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        sys.exit("studio: gradio is not installed: pip install -e \".[studio]\"")
    from oasis_tf.studio import StudioModel, build_app, launch, newest_run

    try:
        model_path = args.model or newest_run(args.runs_dir)
        size = None
        if args.image_size:
            size = tuple(int(s) for s in args.image_size.split(","))
            size = size * 2 if len(size) == 1 else size
        print(f"studio: loading {model_path} ...", flush=True)
        model = StudioModel.load(model_path, image_size=size, z_dim=args.z_dim,
                                 num_classes=args.num_classes)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"studio: error: {error}")
    launch(build_app(model), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
