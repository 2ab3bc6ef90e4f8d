"""The OASIS Studio page (Gradio): paint a label map, get images, resample regions.

``build_app(model)`` returns a ``gradio.Blocks`` for an ``OASISPipeline``:

* a canvas at the model's size times ``canvas_scale`` with a brush in the class
  palette, a class list (names and colours) that sets the brush colour, "Fill"
  (the whole canvas with the class), the editor's eraser, upload of a class-id PNG
  or a colour-coded image, and example label maps;
* "Generate": N variations with their seeds; picking one sets the base seed of
  "Resample these classes" (new noise on those classes' pixels only) and of the
  interpolation strip; downloads of the images and the label map;
* the API endpoint ``/generate`` (label image file, seed) -> PNG, for
  ``gradio_client``.

Errors reach the page as messages (``gradio.Error``), never as a stack trace; the
traceback goes to the server's log.

Disk use is bounded: each request's PNGs are written into a folder of their own in
the work folder, which Gradio copies into its cache as it serves them; the studio
deletes those folders at a later request once they are ``SERVED_SECONDS`` old (long
served by then). Gradio's cache (its copies, the uploads) is emptied of what is
older than ``keep_seconds``:

* by the studio itself, at a request (at most once a second), when that cache lies
  inside the work folder (``oasis-studio`` puts it there): every cache folder whose
  files are all older, and the stray temporary files, except what the page itself
  shows from the start (Gradio's ``keep_in_cache``);
* by Gradio's ``gr.Blocks(delete_cache=(min(keep_seconds, 60), keep_seconds))``
  otherwise (a ``GRADIO_TEMP_DIR`` elsewhere). The studio does not use it for a
  cache of its own: in Gradio 6.x that task walks its sets of cached files while
  requests add to them, and the first "Set changed size during iteration" ends it
  for good (seen under load); it also leaves the emptied folders, and ``gr.File``
  leaves an empty temporary file per input it receives (``components/file.py``).

A work folder the studio made itself goes when the process ends.

A login: ``launch(auth=...)`` with Gradio's own authentication (the page and the
API alike). ``launch`` refuses a host other than the loopback without one unless
``no_auth=True`` (see ``oasis_tf.studio.access``).
"""

import atexit
import functools
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from oasis_tf import images
from oasis_tf.studio.canvas import canvas_scale, example_label_maps, label_from_canvas

MAX_VARIATIONS = 8
KEEP_SECONDS = 600    # Gradio's copies of served files and uploads
SERVED_SECONDS = 60   # the studio's own files: Gradio has copied them by then
log = logging.getLogger("oasis_tf.studio")


def _hex(colour):
    return "#%02x%02x%02x" % tuple(int(c) for c in colour)


def _legend(model):
    items = "".join(
        f'<span style="display:inline-block;margin:2px 8px 2px 0;white-space:nowrap">'
        f'<span style="display:inline-block;width:14px;height:14px;vertical-align:middle;'
        f'border:1px solid #888;background:{_hex(c)}"></span> {i}: {n}</span>'
        for i, (n, c) in enumerate(zip(model.class_names, model.palette)))
    return f'<div style="font-size:13px;line-height:1.6">{items}</div>'


def _short(text):
    """``text`` with the current folder's path left out (paths on the page stay short)."""
    return str(text).replace(os.getcwd() + os.sep, "")


def _message(exc):
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (ValueError, FileNotFoundError)) else \
        f"{type(exc).__name__}: {text}"


def _prune(workdir, age, cache=None, cache_age=None, keep=()):
    """Removes the request folders of ``workdir`` older than ``age`` seconds, and
    from Gradio's ``cache`` (only when it lies inside ``workdir``) every entry whose
    files are all older than ``cache_age``, except the folders of the files in
    ``keep``."""
    now = time.time()
    for folder in workdir.iterdir():
        if folder.name.isdigit() and folder.is_dir():
            try:
                if now - folder.stat().st_mtime > age:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:
                continue
    if cache is None or not cache.is_dir() or workdir.resolve() not in cache.resolve().parents:
        return
    kept = {Path(k).resolve().parent for k in keep}
    for entry in cache.iterdir():
        try:
            if entry.is_dir():
                if entry.resolve() in kept:
                    continue
                newest = max([entry.lstat().st_mtime]
                             + [f.lstat().st_mtime for f in entry.iterdir()])
                if now - newest > cache_age:
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith("tmp") and now - entry.lstat().st_mtime > cache_age:
                entry.unlink()
        except OSError:
            continue


def build_app(model, workdir=None, title="OASIS Studio", keep_seconds=KEEP_SECONDS):
    """The Gradio page for ``model`` (an ``oasis_tf.inference.OASISPipeline``).

    Args:
        model: the pipeline whose images the page shows.
        workdir: folder for the PNGs the page serves (default: a new temporary one,
            removed when the process ends).
        title: the page title.
        keep_seconds: how long served files and uploads are kept (see the module
            docstring): a download link of the page works for about that long.
    """
    import gradio as gr

    h, w = model.image_size
    scale = canvas_scale(model.image_size)
    view = max(1, min(scale, 4))  # enlargement of the generated images on the page
    hexes = [_hex(c) for c in model.palette]
    choices = [f"{i}: {n}" for i, n in enumerate(model.class_names)]
    first = 1 if model.num_classes > 1 else 0
    keep_seconds = max(1, int(keep_seconds))
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="oasis-studio-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    last_prune = [0.0]

    def save(image, stem):
        now = time.time()
        if now - last_prune[0] > 1:  # the folders of earlier requests, once served
            keep = set()
            for component in app.blocks.values():
                keep.update(getattr(component, "keep_in_cache", ()))
            _prune(workdir, min(SERVED_SECONDS, keep_seconds),
                   Path(getattr(app, "GRADIO_CACHE", "") or workdir / "none"), keep_seconds,
                   keep)
            last_prune[0] = now
        # one folder per file: downloads keep plain names, repeated requests never clash
        folder = workdir / str(time.time_ns())
        folder.mkdir()
        path = folder / f"{stem}.png"
        Image.fromarray(np.asarray(image)).save(path)
        return str(path)

    def guarded(fn):
        @functools.wraps(fn)
        def run(*args):
            try:
                return fn(*args)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - every error becomes a message
                log.exception("studio: %s failed", fn.__name__)
                raise gr.Error(_message(exc)) from None
        return run

    example_files = []
    for name, label in example_label_maps(model):
        path = workdir / "examples" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(images.colorize(label, model.palette)).save(path)
        example_files.append(str(path))
    start = (model.read_label(example_files[0]) if example_files
             else np.full(model.image_size, first, np.int32))

    def class_id(choice):
        return int(str(choice).split(":", 1)[0])

    def canvas_label(value):
        if value is None:
            raise ValueError("the canvas is empty: paint a label map or upload one")
        composite = value.get("composite") if isinstance(value, dict) else value
        if composite is None:
            raise ValueError("the canvas is empty: paint a label map or upload one")
        return label_from_canvas(model, np.asarray(composite), scale)

    def label_files(label):
        return [save(images.colorize(label, model.palette), "label_colour"),
                save(label.astype(np.uint8 if label.max() < 256 else np.uint16), "label_ids")]

    def present(label):
        return [choices[c] for c in np.unique(label)]

    def seeds_from(first_seed, count):
        first_seed = int(first_seed or 0)
        return list(range(first_seed, first_seed + int(count)))

    # --------------------------------------------------------------- handlers
    @guarded
    def pick_class(choice):
        return gr.update(brush=gr.Brush(colors=hexes, default_color=hexes[class_id(choice)],
                                        color_mode="fixed", default_size=2 * scale))

    @guarded
    def fill(choice):
        label = np.full(model.image_size, class_id(choice), np.int32)
        return model.colorize(label, scale)

    @guarded
    def upload(path, resize):
        if not path:
            return gr.update(), gr.update()
        with Image.open(path) as im:
            size = (im.size[1], im.size[0])
        if size != model.image_size and not resize:
            raise ValueError(f"the label map is {size[0]}x{size[1]}; this model works on "
                             f"{h}x{w}. Tick 'Resize uploads to {h}x{w} (nearest "
                             f"neighbour)' to resize it, or upload a {h}x{w} map")
        label = model.read_label(path, resize=resize)
        return model.colorize(label, scale), gr.update(choices=choices, value=[])

    @guarded
    def variations(value, first_seed, count):
        label = canvas_label(value)
        seeds = seeds_from(first_seed, count)
        out = model.generate(label, seeds)
        gallery = [(save(images.upscale(x, view), f"view_s{s}"), f"seed {s}")
                   for x, s in zip(out, seeds)]
        files = label_files(label) + [save(x, f"image_s{s}") for x, s in zip(out, seeds)]
        return (gallery, seeds, seeds[0], files, gr.update(choices=present(label)),
                f"Generated seeds {', '.join(map(str, seeds))} "
                f"(classes on the map: {', '.join(present(label))}).")

    @guarded
    def pick(seeds, evt: gr.SelectData):
        if not seeds:
            return gr.update(), gr.update()
        return seeds[evt.index], f"Picked seed {seeds[evt.index]}."

    @guarded
    def resample(value, base_seed, classes, first_seed, count):
        label = canvas_label(value)
        if not classes:
            raise ValueError("choose the classes to resample (the check boxes)")
        ids = [class_id(c) for c in classes]
        seeds = seeds_from(first_seed, count)
        base = model.generate(label, [int(base_seed or 0)])
        out = model.resample(label, int(base_seed or 0), ids, seeds)
        gallery = [(save(images.upscale(base[0], view), "base"), f"base: seed {base_seed}")]
        gallery += [(save(images.upscale(x, view), f"resample_s{s}"), f"resample seed {s}")
                    for x, s in zip(out, seeds)]
        files = label_files(label) + [save(x, f"resample_s{s}") for x, s in zip(out, seeds)]
        return gallery, files, (f"Resampled {', '.join(classes)} of seed {base_seed} with "
                                f"seeds {', '.join(map(str, seeds))}.")

    @guarded
    def interpolate(value, seed_a, seed_b, steps):
        label = canvas_label(value)
        out = model.interpolate(label, int(seed_a or 0), int(seed_b or 0), int(steps))
        strip = images.make_grid([list(out)], pad=0)
        return (save(images.upscale(strip, view), "strip"), [save(strip, "interpolation")],
                f"Interpolated seed {seed_a} -> {seed_b} in {int(steps)} steps.")

    @guarded
    def api_generate(label_file, seed):
        """Label image file (class-id PNG or colour-coded) and seed -> generated PNG."""
        if not label_file:
            raise ValueError("no label image given")
        label = model.read_label(label_file)
        return save(model.generate(label, [int(seed)])[0], f"api_s{int(seed)}")

    # ------------------------------------------------------------------ page
    from gradio.utils import get_upload_folder

    own_cache = workdir.resolve() in Path(get_upload_folder()).resolve().parents
    cleanup = None if own_cache else (min(60, keep_seconds), keep_seconds)  # every, older than
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=cleanup) as app:
        gr.Markdown(f"## {title}\nModel: `{_short(model.source)}` &middot; {h}x{w} &middot; "
                    f"{model.num_classes} classes &middot; z_dim {model.z_dim}. Paint with "
                    f"the brush (its colours are the classes), then **Generate**.")
        with gr.Row():
            with gr.Column(scale=1):
                editor = gr.ImageEditor(
                    value=model.colorize(start, scale), label="Label map", type="numpy",
                    height=min(h * scale, 512) + 110,
                    image_mode="RGBA", format="png", canvas_size=(w * scale, h * scale),
                    fixed_canvas=True, sources=(), transforms=(), layers=False,
                    brush=gr.Brush(colors=hexes, default_color=hexes[first],
                                   color_mode="fixed", default_size=2 * scale),
                    eraser=gr.Eraser(default_size=2 * scale), elem_id="canvas")
                with gr.Row():
                    brush_class = gr.Dropdown(choices, value=choices[first],
                                              label="Class (brush colour)", elem_id="class")
                    fill_button = gr.Button("Fill canvas with class", elem_id="fill")
                with gr.Accordion("Classes", open=model.num_classes <= 40):
                    gr.HTML(_legend(model))
                upload_file = gr.File(label="Upload a label map: class-id PNG or colour-coded "
                                            "in the palette", file_types=["image"],
                                      type="filepath", elem_id="upload")
                resize = gr.Checkbox(False, label=f"Resize uploads to {h}x{w} (nearest "
                                                  f"neighbour)")
                if example_files:
                    gr.Examples([[f] for f in example_files], inputs=upload_file,
                                label="Example label maps (validation set)")
            with gr.Column(scale=1):
                with gr.Row():
                    first_seed = gr.Number(0, precision=0, label="First seed", elem_id="seed")
                    count = gr.Slider(1, MAX_VARIATIONS, value=4, step=1, label="Variations")
                generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
                gallery = gr.Gallery(label="Variations (click one to pick it)", columns=4,
                                     elem_id="variations", object_fit="contain",
                                     height="auto")
                status = gr.Markdown("", elem_id="status")
                with gr.Accordion("Resample these classes", open=True):
                    with gr.Row():
                        base_seed = gr.Number(0, precision=0, label="Picked (base) seed")
                        resample_seed = gr.Number(100, precision=0, label="First new seed")
                    resample_classes = gr.CheckboxGroup(present(start), label="Classes to "
                                                        "resample (their pixels get new noise)")
                    resample_button = gr.Button("Resample these classes")
                    resample_gallery = gr.Gallery(label="Resampled", columns=4,
                                                  object_fit="contain", height="auto",
                                                  elem_id="resampled")
                with gr.Accordion("Interpolate between two seeds", open=False):
                    with gr.Row():
                        seed_a = gr.Number(0, precision=0, label="Seed A")
                        seed_b = gr.Number(1, precision=0, label="Seed B")
                        steps = gr.Slider(2, 12, value=8, step=1, label="Steps")
                    interpolate_button = gr.Button("Interpolate")
                    strip = gr.Image(label="Interpolation", format="png", type="filepath",
                                     interactive=False)
                downloads = gr.File(label="Downloads (label map: colours and class ids; "
                                          "images)", file_count="multiple", interactive=False,
                                    elem_id="downloads")
        seeds_state = gr.State([])

        brush_class.change(pick_class, brush_class, editor, api_visibility="private")
        fill_button.click(fill, brush_class, editor, api_visibility="private")
        upload_file.change(upload, [upload_file, resize], [editor, resample_classes],
                           api_visibility="private")
        generate_button.click(variations, [editor, first_seed, count],
                              [gallery, seeds_state, base_seed, downloads, resample_classes,
                               status], api_visibility="private")
        gallery.select(pick, seeds_state, [base_seed, status], api_visibility="private")
        resample_button.click(resample, [editor, base_seed, resample_classes, resample_seed,
                                         count], [resample_gallery, downloads, status],
                              api_visibility="private")
        interpolate_button.click(interpolate, [editor, seed_a, seed_b, steps],
                                 [strip, downloads, status], api_visibility="private")

        # The scripting endpoint: hidden components, one named event.
        api_label = gr.File(type="filepath", visible=False, label="label image")
        api_seed = gr.Number(0, precision=0, visible=False, label="seed")
        api_image = gr.Image(type="filepath", format="png", visible=False, label="image")
        api_button = gr.Button(visible=False)
        api_button.click(api_generate, [api_label, api_seed], api_image, api_name="generate")
    return app


def launch(app, host="127.0.0.1", port=None, block=True, quiet=False, auth=None,
           no_auth=False):
    """Starts the server; returns its URL (``block``: serves until interrupted).

    Args:
        app: the ``build_app`` page.
        host: the address to serve on.
        port: the port (None: Gradio's choice).
        block: serve until interrupted.
        quiet: no start-up messages from Gradio.
        auth: ``[(user, password), ...]`` (``oasis_tf.studio.access.read_auth_file``):
            Gradio's login, for the page and the API.
        no_auth: serve a host other than the loopback without a login, on purpose.

    Raises:
        ValueError: a host other than the loopback without ``auth`` or ``no_auth``.
    """
    from oasis_tf.studio.access import check_access

    check_access(host, auth, no_auth)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet,
               show_error=False, inbrowser=False, auth=auth or None,
               auth_message="OASIS Studio: log in with a user of the --auth file"
               if auth else None)
    url = app.local_url
    if block:
        print(f"studio: serving on {url}  (Ctrl+C stops it)", flush=True)
        app.block_thread()
    return url
