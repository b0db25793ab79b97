"""``digitnet predict``, driven as a user drives it: ``digitnet predict ...`` (``run_cli``).

A small model is trained once for the module through the command line itself; real test digits
are written as images (white on black PNGs as MNIST stores them, and dark ink on light paper as
JPEGs on a larger canvas) and the command must read them as the model reads the clean digits.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from digitnet.data.datasets import load_embedded
from digitnet.modelfile import load_model, save_model
from digitnet.network import Network

GOOD = 5  # test digits written as images for each kind of picture
PERCENT = r"(?:\d{1,3}\.\d|>99\.9|<0\.1) %"
FORBIDDEN = ("matplotlib", "torch", "pooch", "tqdm", "requests")


def predict_json(*args: str) -> tuple[int, list[dict], str]:
    r = run_cli("predict", *args, "--json")
    return r.returncode, json.loads(r.stdout), r.stderr


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist():
    return load_embedded()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    r = run_cli("train", "--layers", "784-64-10", "--epochs", "3", "--seed", "0", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def net(run_dir) -> Network:
    return load_model(run_dir / "model.safetensors")[0]


def _grey_png(grey: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.rint(np.clip(grey, 0, 1) * 255).astype(np.uint8)).save(path, "PNG")
    return path


def _on_paper(digit: np.ndarray, rng: np.random.Generator, path: Path) -> Path:
    """A JPEG of an MNIST digit drawn dark on light, enlarged somewhere on a 400x300 page,
    with a lighting gradient and sensor noise."""
    width, height = 400, 300
    side = int(rng.integers(120, 200))
    ink = np.zeros((height, width), dtype=np.float32)
    big = Image.fromarray(np.rint(digit * 255).astype(np.uint8)).resize(
        (side, side), Image.Resampling.BICUBIC
    )
    top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
    ink[top : top + side, left : left + side] = np.asarray(big, dtype=np.float32) / 255
    lighting = np.linspace(0.8, 1.0, width, dtype=np.float32)[None, :]
    page = (0.92 - 0.75 * ink) * lighting + rng.normal(0, 0.015, (height, width))
    Image.fromarray(np.rint(np.clip(page, 0, 1) * 255).astype(np.uint8)).save(
        path, "JPEG", quality=85
    )
    return path


@pytest.fixture(scope="module")
def pictures(mnist, tmp_path_factory) -> dict[str, list[tuple[Path, int]]]:
    """Test digits as files, each with its index in the test set: white-on-black PNGs (the first
    GOOD digits) and dark-on-light JPEGs on a page (the next GOOD)."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(7)
    pngs, jpegs = [], []
    for i in range(GOOD):
        digit = mnist.X_test[:, i].reshape(28, 28)
        pngs.append((_grey_png(digit, folder / f"digit{i}.png"), i))
    for i in range(GOOD, 2 * GOOD):
        digit = mnist.X_test[:, i].reshape(28, 28)
        jpegs.append((_on_paper(digit, rng, folder / f"paper{i}.jpg"), i))
    return {"png": pngs, "jpeg": jpegs}


def _png_claiming(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's
    header: decoded, 50000x50000 would take 2.5 GB)."""
    out = io.BytesIO()
    Image.new("L", (8, 8), 255).save(out, "PNG")
    data = bytearray(out.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> list[tuple[str, str]]:
    """Files predict must refuse, each with a word its one-line error must contain."""
    folder = tmp_path_factory.mktemp("bad")
    (folder / "notes.png").write_text("not an image at all\n")
    (folder / "empty.png").write_bytes(b"")
    Image.new("L", (300, 200), 235).save(folder / "blank.png")
    (folder / "bomb.png").write_bytes(_png_claiming(50_000, 50_000))
    (folder / "a-folder.png").mkdir()
    return [
        (str(folder / "notes.png"), "not an image"),
        (str(folder / "empty.png"), "empty"),
        (str(folder / "missing.png"), "no such file"),
        (str(folder / "blank.png"), "blank"),
        (str(folder / "bomb.png"), "decompression bomb"),
        (str(folder / "a-folder.png"), "folder"),
    ]


# -- reading digits --------------------------------------------------------------------------
def _agreement(records: list[dict], pics: list[tuple[Path, int]], net, mnist) -> int:
    clean = net.predict(mnist.X_test[:, [i for _, i in pics]])
    return sum(int(r["prediction"] == int(c)) for r, c in zip(records, clean, strict=True))


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_digits_are_read_as_the_model_reads_the_clean_digits(kind, pictures, run_dir, net, mnist):
    pics = pictures[kind]
    status, records, stderr = predict_json(str(run_dir), *(str(p) for p, _ in pics))
    assert status == 0 and stderr == ""
    assert [r["image"] for r in records] == [str(p) for p, _ in pics]
    assert _agreement(records, pics, net, mnist) >= GOOD - 1


def test_human_output_one_line_per_image_in_order(pictures, run_dir):
    pics = pictures["png"][:3]
    r = run_cli("predict", str(run_dir / "model.safetensors"), *(str(p) for p, _ in pics))
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == len(pics)
    for line, (path, _) in zip(lines, pics, strict=True):
        guess = rf"\d \({PERCENT}\)"
        sure = rf"{guess}   then {guess}, {guess}"
        # (the module's small model is not sure of some clean digits)
        unsure = rf"not sure \(best guess \d, {PERCENT}\): [^\n]+"
        pattern = rf"{re.escape(str(path))}: +(?:{sure}|{unsure})"
        assert re.fullmatch(pattern, line), line


def test_json_schema(pictures, run_dir):
    paths = [str(p) for p, _ in pictures["png"][:2] + pictures["jpeg"][:1]]
    paths.append(paths[0])  # the same image twice: answered twice, in place
    status, records, _ = predict_json(str(run_dir), *paths)
    assert status == 0
    assert isinstance(records, list) and [r["image"] for r in records] == paths
    for r in records:
        assert list(r) == [
            "image", "prediction", "probabilities", "top3", "confident", "reason", "number",
            "digits",
        ]  # fmt: skip
        assert isinstance(r["prediction"], int)
        assert r["number"] == str(r["prediction"]) and len(r["digits"]) == 1
        digit = r["digits"][0]
        assert list(digit) == ["box", "prediction", "probabilities", "top3", "confident", "reason"]
        assert {k: digit[k] for k in ("prediction", "probabilities", "top3", "confident")} == {
            k: r[k] for k in ("prediction", "probabilities", "top3", "confident")
        }
        assert isinstance(r["confident"], bool)
        assert (r["reason"] is None) == r["confident"]
        x, y, w, h = digit["box"]
        assert 0 <= x < x + w <= 400 and 0 <= y < y + h <= 300
        probabilities = r["probabilities"]
        assert len(probabilities) == 10 and all(isinstance(p, float) for p in probabilities)
        assert all(0.0 <= p <= 1.0 for p in probabilities)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
        top3 = r["top3"]
        assert len(top3) == 3 and all(isinstance(d, int) and 0 <= d <= 9 for d, _ in top3)
        assert len({d for d, _ in top3}) == 3
        assert [p for _, p in top3] == sorted((p for _, p in top3), reverse=True)
        assert r["prediction"] == top3[0][0]
        assert top3[0][1] == max(probabilities)
        for d, p in top3:
            assert probabilities[d] == p
    assert records[-1] == records[0]


# -- --show ----------------------------------------------------------------------------------
def test_show_writes_the_image_the_network_read(pictures, run_dir, tmp_path):
    from digitnet.imaging import preprocess

    pics = [pictures["jpeg"][0][0], pictures["png"][1][0]]
    twin = tmp_path / "elsewhere" / pics[0].name  # the same stem: gets "-2"
    twin.parent.mkdir()
    twin.write_bytes(pics[0].read_bytes())
    show = tmp_path / "shown" / "nested"
    status, records, _ = predict_json(str(run_dir), *map(str, pics), str(twin), "--show", str(show))
    assert status == 0
    stems = [pics[0].stem, pics[1].stem, f"{pics[0].stem}-2"]
    assert sorted(p.name for p in show.iterdir()) == sorted(
        [f"{s}.28x28{x}.png" for s in stems for x in ("", ".x8")]
        + [f"{s}.boxes.png" for s in stems]
    )
    assert all(
        str(show / f"{s}.boxes.png") in r["shown"] for s, r in zip(stems, records, strict=True)
    )
    for path, stem, record in zip([*pics, twin], stems, records, strict=True):
        exact = Image.open(show / f"{stem}.28x28.png")
        assert exact.size == (28, 28) and exact.mode == "L"
        pixels = np.asarray(exact, dtype=np.float32) / 255
        assert np.abs(pixels - preprocess(path)).max() <= 0.5 / 255 + 1e-6
        large = np.asarray(Image.open(show / f"{stem}.28x28.x8.png"))
        assert large.shape == (224, 224)
        np.testing.assert_array_equal(large, np.kron(np.asarray(exact), np.ones((8, 8), np.uint8)))
        # The image written is the image read: predicting it again gives the same answer.
        _, again, _ = predict_json(str(run_dir), str(show / f"{stem}.28x28.png"))
        assert again[0]["prediction"] == record["prediction"]


def _number(digits: list[np.ndarray], rng: np.random.Generator, path: Path) -> Path:
    """A JPEG of test digits written on one line, dark on light paper, with uneven gaps."""
    side = 90
    gaps = rng.integers(8, 30, size=len(digits))
    width = int(60 + side * len(digits) + gaps.sum())
    page = np.full((220, width), 0.9, dtype=np.float32)
    x = 30
    for digit, gap in zip(digits, gaps, strict=True):
        big = Image.fromarray(np.rint(digit * 255).astype(np.uint8)).resize((side, side))
        top = 60 + int(rng.integers(-10, 11))
        ink = np.asarray(big, dtype=np.float32) / 255
        page[top : top + side, x : x + side] -= 0.75 * ink
        x += side + int(gap) - 28  # (an MNIST digit's 28x28 has a margin: a digit's gap)
    page += rng.normal(0, 0.01, page.shape).astype(np.float32)
    Image.fromarray(np.rint(np.clip(page, 0, 1) * 255).astype(np.uint8)).save(path, quality=90)
    return path


def test_a_number_is_read_digit_by_digit_left_to_right(mnist, run_dir, net, tmp_path):
    rng = np.random.default_rng(11)
    paths, truths, start = [], [], 20
    for k in range(2, 7):
        index = list(range(start, start + k))
        start += k
        paths.append(str(_number([mnist.X_test[:, i].reshape(28, 28) for i in index], rng,
                                 tmp_path / f"number{k}.jpg")))  # fmt: skip
        truths.append("".join(str(int(d)) for d in net.predict(mnist.X_test[:, index])))
    status, records, _ = predict_json(str(run_dir), *paths, "--show", str(tmp_path / "seen"))
    assert status == 0
    for r, truth in zip(records, truths, strict=True):
        assert len(r["number"]) == len(truth) == len(r["digits"]), (r["number"], truth)
        assert r["prediction"] is None and r["probabilities"] is None
        assert r["number"] == "".join(str(d["prediction"]) for d in r["digits"])
        lefts = [d["box"][0] for d in r["digits"]]
        assert lefts == sorted(lefts)
        assert all(
            a[0] + a[2] <= b[0] for a, b in itertools.pairwise(d["box"] for d in r["digits"])
        )
        assert len(r["shown"]) == 2 * len(truth) + 1
    read_right = sum(
        a == b
        for r, t in zip(records, truths, strict=True)
        for a, b in zip(r["number"], t, strict=True)
    )
    assert read_right >= sum(map(len, truths)) - 2
    human = run_cli("predict", str(run_dir), paths[0])
    assert human.stdout.startswith(f"{paths[0]}: ")
    assert records[0]["number"] in human.stdout


def test_show_refuses_a_file_as_its_folder(pictures, run_dir, tmp_path):
    clash = tmp_path / "file"
    clash.write_text("")
    r = run_cli("predict", str(run_dir), str(pictures["png"][0][0]), "--show", str(clash))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [f"error: --show {clash}: is a file, not a folder."]


# -- bad images ------------------------------------------------------------------------------
def test_bad_images_fail_alone_in_one_line_each(pictures, bad_inputs, run_dir):
    good = [str(p) for p, _ in pictures["png"][:2]]
    paths = [good[0], *(path for path, _ in bad_inputs), good[1]]
    r = run_cli("predict", str(run_dir), *paths)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == good
    errors = [line for line in r.stderr.splitlines() if not line.startswith("hint: ")]
    assert len(errors) == len(bad_inputs)  # one error line each (then its hint line, if any)
    for line, (path, word) in zip(errors, bad_inputs, strict=True):
        assert line.startswith(f"error: {path}: ") and word in line, line


def test_bad_images_in_json_are_error_objects_in_place(pictures, bad_inputs, run_dir):
    good = [str(p) for p, _ in pictures["jpeg"][:2]]
    paths = [good[0], *(path for path, _ in bad_inputs), good[1]]
    status, records, stderr = predict_json(str(run_dir), *paths)
    assert status == 1 and stderr == ""
    assert [r["image"] for r in records] == paths
    assert "prediction" in records[0] and "prediction" in records[-1]
    for r, (path, word) in zip(records[1:-1], bad_inputs, strict=True):
        assert list(r) == ["image", "error"]
        assert r["error"].startswith(f"{path}: ") and word in r["error"]
        assert "\n" not in r["error"]


def test_only_bad_images_still_give_an_answer_for_each(bad_inputs, run_dir):
    status, records, _ = predict_json(str(run_dir), *(path for path, _ in bad_inputs[:3]))
    assert status == 1 and all(list(r) == ["image", "error"] for r in records)


# -- the model -------------------------------------------------------------------------------
def test_bad_models_are_refused_in_one_line(pictures, tmp_path):
    image = str(pictures["png"][0][0])
    save_model(tmp_path / "wide.safetensors", Network.from_spec("100-16-10", seed=0))
    save_model(tmp_path / "five.safetensors", Network.from_spec("784-16-5", seed=0))
    (tmp_path / "empty-run").mkdir()
    cases = [
        (tmp_path / "nothing.safetensors", "no such file"),
        (tmp_path / "empty-run", "a folder without model.safetensors"),
        (Path(image), "not a digitnet model file"),
        (tmp_path / "wide.safetensors", "100 inputs to 10 outputs; reading digits needs 784"),
        (tmp_path / "five.safetensors", "784 inputs to 5 outputs"),
    ]
    for model, text in cases:
        r = run_cli("predict", str(model), image)
        assert r.returncode == 1 and r.stdout == ""
        first = r.stderr.splitlines()[0]
        assert first.startswith(f"error: {model}") and text in first, first


def test_a_sigmoid_output_is_normalised_and_class_names_are_used(pictures, tmp_path):
    """An mse model's ten sigmoid scores are divided by their sum; a model trained on a dataset
    with names shows them in the human output (the JSON prediction stays the index)."""
    image = str(pictures["png"][0][0])
    model = tmp_path / "mse.safetensors"
    save_model(model, Network.from_spec("784-16-10", cost="mse", seed=0))
    status, records, _ = predict_json(str(model), image)
    assert status == 0 and sum(records[0]["probabilities"]) == pytest.approx(1.0, abs=1e-4)

    from digitnet.data.sources import FASHION_MNIST

    named = tmp_path / "fashion.safetensors"
    save_model(
        named,
        Network.from_spec("784-16-10", seed=0),
        metadata={"dataset": {"name": "fashion-mnist"}},
    )
    r = run_cli("predict", str(named), image)
    _, records, _ = predict_json(str(named), image)
    best = records[0]["prediction"]
    assert r.returncode == 0
    named_best = f"{best} {FASHION_MNIST.classes[best]}"
    # (an untrained model is not sure: its best guess is named all the same)
    assert r.stdout.startswith(
        (f"{image}: {named_best} (", f"{image}: not sure (best guess {named_best}, ")
    )


# -- the command itself ----------------------------------------------------------------------
def test_help_and_module_are_light():
    r = run_cli("predict", "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "--show" in r.stdout
    assert "predict" in run_cli("--help").stdout
    code = "import sys, digitnet.commands.predict; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_predict_imports_no_heavy_module_it_does_not_need(pictures, run_dir):
    code = (
        "import sys\n"
        "from digitnet import cli\n"
        "status = cli.main(['predict', sys.argv[1], sys.argv[2]])\n"
        f"print(status, sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(run_dir), str(pictures["png"][0][0])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines()[-1] == "0 []"
