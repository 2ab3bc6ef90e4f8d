"""OASIS Studio: the pipeline it runs, the canvas, the /generate API (gradio_client) and a
real browser.

One tiny exported model and one studio server on 127.0.0.1 for the whole session; a
second server with a login and files kept one second shows that a login guards the
page and the API, and that a few hundred requests do not fill the disk.
The API test needs ``gradio`` (extra ``studio``); the browser test also needs
``playwright`` (pip) and Debian's ``chromium`` (apt-get install chromium): without
them they skip, saying what is missing. ``OASIS_STUDIO_SCREENSHOT=path.png`` also
writes the browser test's screenshot there (docs/studio.png was made that way);
``OASIS_STUDIO_MODEL=<export version folder>`` runs the tests on another export.
"""

import os
import shutil
import socket
import time

import numpy as np
import pytest
from PIL import Image

from oasis_tf import images, inference
from oasis_tf.inference import OASISPipeline
from oasis_tf.models.generator import OASISGenerator
from oasis_tf.studio.canvas import canvas_scale, example_label_maps, label_from_canvas

SIZE = (32, 32)


def _tiny_generator():
    import keras

    keras.utils.set_random_seed(3)
    g = OASISGenerator(12, SIZE, base_channels=4, z_dim=4, num_res_blocks=2, spade_hidden=8,
                       dataset="synthetic")
    g({"label": np.zeros((1,) + SIZE, np.int32), "noise": np.zeros((1, 4), np.float32)})
    # A random generator's tanh saturates and hardly follows its label map; a smaller
    # output conv makes the image change where the map changes (the browser test).
    for w in g.conv_img.weights:
        w.assign(w * 0.1)
    return g


@pytest.fixture(scope="session")
def generator():
    return _tiny_generator()


@pytest.fixture(scope="session")
def export_dir(generator, tmp_path_factory):
    if os.environ.get("OASIS_STUDIO_MODEL"):
        return os.environ["OASIS_STUDIO_MODEL"]
    from oasis_tf.export import export_saved_model

    return export_saved_model(generator, tmp_path_factory.mktemp("studio_export"), "oasis", 1)


def _label(model, index=0):
    return example_label_maps(model, index + 1)[index][1]


def test_pipeline_from_generator(generator):
    model = OASISPipeline.from_generator(generator)
    assert model.class_names[1] == "sky" and model.palette.shape == (12, 3)
    label = _label(model)
    np.testing.assert_array_equal(model.generate(label, [3, 4]),
                                  inference.generate(generator, np.stack([label] * 2),
                                                     seed=[3, 4]).numpy())
    noise = inference.resample_class_noise(inference.seeded_noise([3, 3], generator.z_dim),
                                           np.stack([label] * 2), [1, 4], [7, 8])
    np.testing.assert_array_equal(model.resample(label, 3, [1, 4], [7, 8]),
                                  inference.generate(generator, np.stack([label] * 2),
                                                     noise=noise).numpy())
    strip = model.interpolate(label, 3, 4, steps=3)
    ends = model.generate(label, [3, 4])
    assert strip.shape == (3,) + SIZE + (3,)
    assert np.abs(strip[[0, 2]].astype(int) - ends.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="16x16"):
        model.generate(np.zeros((16, 16), np.int32), [0])


def test_label_from_canvas(generator):
    model = OASISPipeline.from_generator(generator)
    label = _label(model)
    scale = canvas_scale(SIZE)
    canvas = model.colorize(label, scale)
    rgba = np.concatenate([canvas, np.full(canvas.shape[:2] + (1,), 255, np.uint8)], -1)
    # anti-aliased stroke edges: blends of two palette colours snap to one of them
    rgba[::scale, ::scale, :3] = (rgba[::scale, ::scale, :3] // 2 + 60).astype(np.uint8)
    np.testing.assert_array_equal(label_from_canvas(model, rgba, scale), label)
    rgba[:scale * 4, :scale * 4, 3] = 0  # erased to transparent: class 0
    got = label_from_canvas(model, rgba, scale)
    assert (got[:4, :4] == 0).all() and (got[4:] == label[4:]).all()


# ------------------------------------------------------------------ server
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def studio(export_dir, tmp_path_factory):
    pytest.importorskip("gradio", reason="gradio not installed (pip install -e '.[studio]')")
    pytest.importorskip("gradio_client", reason="gradio_client not installed")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from oasis_tf.studio import build_app, launch

    model = OASISPipeline.from_pretrained(export_dir)
    app = build_app(model, workdir=tmp_path_factory.mktemp("studio_files"))
    url = launch(app, host="127.0.0.1", port=_free_port(), block=False, quiet=True)
    yield url, model, export_dir
    app.close()


def _serving_default(export_dir, label, seed):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_dir))
    out = loaded.signatures["serving_default"](label_map=tf.constant(label[None], tf.int32),
                                               seed=tf.constant([seed], tf.int64))
    return out["image"].numpy()[0]


def test_api_generate_equals_serving_default(studio, tmp_path):
    from gradio_client import Client, handle_file

    url, model, export_dir = studio
    label = _label(model, 1)
    ids = tmp_path / "ids.png"
    Image.fromarray(label.astype(np.uint8)).save(ids)
    colour = tmp_path / "colour.png"
    Image.fromarray(images.colorize(label, model.palette)).save(colour)
    from oasis_tf.export import read_export_metadata

    meta = read_export_metadata(export_dir)
    assert meta["dataset"] == "synthetic" and meta["class_names"][6] == "water"
    assert meta["palette"][6] == [30, 60, 200] and model.class_names == meta["class_names"]
    want = _serving_default(export_dir, label, 7)
    client = Client(url, verbose=False)
    for path in (ids, colour):
        got = client.predict(handle_file(str(path)), 7, api_name="/generate")
        np.testing.assert_array_equal(np.asarray(Image.open(got).convert("RGB")), want)


def test_api_bad_label_image_is_a_message(studio, tmp_path):
    from gradio_client import Client, handle_file

    url, model, _ = studio
    client = Client(url, verbose=False)
    bad = images.colorize(_label(model), model.palette)
    bad[:2, :3] = (255, 0, 255)
    path = tmp_path / "bad.png"
    Image.fromarray(bad).save(path)
    with pytest.raises(Exception) as err:
        client.predict(handle_file(str(path)), 1, api_name="/generate")
    assert "(255, 0, 255)" in str(err.value) and "6 pixels" in str(err.value)
    assert "Traceback" not in str(err.value)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(small)
    with pytest.raises(Exception, match="resize"):
        client.predict(handle_file(str(small)), 1, api_name="/generate")
    # the server keeps answering
    good = tmp_path / "good.png"
    Image.fromarray(_label(model).astype(np.uint8)).save(good)
    assert os.path.exists(client.predict(handle_file(str(good)), 1, api_name="/generate"))


# ----------------------------------------------------------------- browser
def _chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_at(page, src):
    import io

    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())))


def _image_at(page, selector):
    src = page.locator(f"{selector} img").first.get_attribute("src")
    return _png_at(page, src)[..., :3].astype(np.int32)


@pytest.mark.slow
def test_browser_paint_and_generate(studio, tmp_path):
    pytest.importorskip("playwright", reason="playwright not installed (pip install "
                        "playwright; no `playwright install` needed)")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    url, model, _ = studio
    water = model.class_names.index("water")
    shot = tmp_path / "studio.png"

    def label_ids(page):
        href = page.locator('#downloads a[download="label_ids.png"]').first.get_attribute("href")
        return _png_at(page, href)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#generate", timeout=60_000)
        # the page opens on an example label map: its image first
        page.click("#generate")
        page.wait_for_selector("#variations img", timeout=60_000)
        before, unpainted = _image_at(page, "#variations"), label_ids(page)
        first_src = page.locator("#variations img").first.get_attribute("src")
        # a horizontal water stroke across the lower half of the canvas
        page.click("#class input")
        page.get_by_role("option", name=f"{water}: water").click()
        page.wait_for_timeout(1500)  # the editor takes the new brush colour
        box = page.locator("#canvas canvas").first.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.7
        # hover first: a press right after the colour change can be lost
        page.mouse.move(x - 150, y - 100)
        for i in range(5):
            page.mouse.move(x - 150 + 8 * i, y - 100 + 20 * i, steps=3)
        page.mouse.move(x - 120, y, steps=3)
        page.wait_for_timeout(300)
        page.mouse.down()
        for i in range(6):  # the editor joins the points with its brush
            page.mouse.move(x - 120 + 48 * i, y)
        page.mouse.up()
        page.wait_for_timeout(500)
        page.click("#generate")
        page.wait_for_function(
            "src => { const i = document.querySelector('#variations img');"
            " return i && i.getAttribute('src') !== src; }", arg=first_src, timeout=60_000)
        page.wait_for_timeout(1000)
        after, painted = _image_at(page, "#variations"), label_ids(page)
        status = page.inner_text("#status")
        page.screenshot(path=str(shot), full_page=False)
        if os.environ.get("OASIS_STUDIO_SCREENSHOT"):
            page.screenshot(path=os.environ["OASIS_STUDIO_SCREENSHOT"], full_page=False)
        browser.close()
    assert shot.stat().st_size > 0
    assert f"{water}: water" in status, status
    # the stroke: where the painted map differs from the example (class ids, downloaded)
    stroke = painted != unpainted
    assert 0 < stroke.mean() < 0.5 and (painted[stroke] == water).all()
    view = before.shape[0] // model.image_size[0]
    diff = np.abs(after - before).sum(-1)[::view, ::view]
    inside, outside = diff[stroke].mean(), diff[~stroke].mean()
    print(f"browser test: mean |after - before| inside the stroke {inside:.1f}, outside "
          f"{outside:.1f} (sum over RGB, uint8)")
    assert inside > outside, (inside, outside)


# ------------------------------------------------------------ login, disk
def test_a_host_beyond_the_loopback_needs_a_login(run_cli, tmp_path):
    """Refused before any model loads (exit status 2), saying how to add a login;
    a bad --auth file is named by its line, never echoing a password."""
    out = run_cli("studio", "--host", "0.0.0.0", "--model", tmp_path / "no-model")
    assert out.returncode == 2, out.stderr
    assert ("--host 0.0.0.0 serves the studio to every machine that can reach this one, "
            "and it has no login: give --auth FILE") in out.stderr
    users = tmp_path / "users.txt"
    users.write_text("ada:s3cret pass\nbob-without-a-colon\n")
    out = run_cli("studio", "--host", "0.0.0.0", "--auth", users, "--model", tmp_path / "x")
    assert out.returncode == 2 and f"--auth {users}: line 2 is not user:password" in out.stderr
    assert "s3cret" not in out.stdout + out.stderr
    from oasis_tf.studio.access import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("::")


LOGIN = ("ada", "correct horse battery")


@pytest.fixture(scope="module")
def guarded_studio(export_dir, tmp_path_factory):
    """A studio with a login (``--auth`` file) that keeps served files 1 s, its
    Gradio cache inside its work folder as ``oasis-studio`` sets it up:
    ``(url, work folder, model, app)``."""
    pytest.importorskip("gradio", reason="gradio not installed (pip install -e '.[studio]')")
    pytest.importorskip("gradio_client", reason="gradio_client not installed")
    from oasis_tf.studio import build_app, launch
    from oasis_tf.studio.access import read_auth_file

    work = tmp_path_factory.mktemp("guarded_studio")
    users = work.parent / f"{work.name}-users.txt"
    users.write_text("# user:password\n%s:%s\n" % LOGIN)
    # Gradio reads it when the app is built and launched and on every upload (the
    # session's studio, whose tests come first in this file, is not asked meanwhile)
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(work / "gradio")
    try:
        model = OASISPipeline.from_pretrained(export_dir)
        app = build_app(model, workdir=work, keep_seconds=1)
        url = launch(app, host="127.0.0.1", port=_free_port(), block=False, quiet=True,
                     auth=read_auth_file(users))
        yield url, work, model, app
        app.close()
    finally:
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous


def _client(url, tmp_path, auth=LOGIN):
    from gradio_client import Client

    # the client's downloads go elsewhere (by default it shares GRADIO_TEMP_DIR)
    return Client(url, auth=auth, verbose=False, download_files=str(tmp_path / "client"))


def test_a_login_guards_the_page_and_the_api(guarded_studio, tmp_path):
    import httpx
    from gradio_client import handle_file

    url, _, model, _ = guarded_studio
    base = url.rstrip("/")
    label = _label(model)
    path = tmp_path / "ids.png"
    Image.fromarray(label.astype(np.uint8)).save(path)
    # without a login: neither the page's configuration nor the API answers
    for response in (httpx.get(f"{base}/config"), httpx.get(f"{base}/gradio_api/info"),
                     httpx.post(f"{base}/gradio_api/call/generate", json={"data": [None, 1]})):
        assert response.status_code in (401, 403), (response.request.url, response.status_code)
    with pytest.raises(Exception):
        _client(url, tmp_path, auth=None).predict(handle_file(str(path)), 7,
                                                  api_name="/generate")
    with pytest.raises(Exception):
        _client(url, tmp_path, auth=(LOGIN[0], "wrong"))
    # with it: served
    got = _client(url, tmp_path).predict(handle_file(str(path)), 7, api_name="/generate")
    np.testing.assert_array_equal(np.asarray(Image.open(got).convert("RGB")),
                                  model.generate(label, [7])[0])


def _files(folder):
    return sum(1 for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_served_files_do_not_fill_the_disk(guarded_studio, tmp_path):
    """200 requests, each a new image, through the app's Python API (Gradio's own
    pre- and post-processing, its cache), in 4 bursts of 50 1.5 s apart: the
    work folder (the studio's PNGs, Gradio's copies, its temporary files) never
    holds more than about one burst, and after the last it is back to what it held
    idle. Kept forever, the 200 would leave 3 files each."""
    url, work, model, app = guarded_studio
    path = tmp_path / "ids.png"
    Image.fromarray(_label(model).astype(np.uint8)).save(path)
    idle = _files(work)
    counts = []
    start = time.time()
    for burst in range(4):
        for seed in range(50 * burst, 50 * burst + 50):
            out = app(str(path), seed, api_name="generate")
            counts.append(_files(work))
        time.sleep(1.5)  # kept 1 s: the next request deletes what is older
    assert os.path.exists(out)
    app(str(path), 999, api_name="generate")
    settled = _files(work)
    print(f"200 requests in {time.time() - start:.1f} s; at most {max(counts)} files at "
          f"once, {settled} after the last burst (idle: {idle})")
    assert max(counts) <= idle + 3 * 50 + 10, counts[::10]
    assert settled <= idle + 6, sorted(str(p.relative_to(work)) for p in work.rglob("*")
                                       if p.is_file())
