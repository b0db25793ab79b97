"""``digitnet predict``: read a person's own photos, scans or drawings of digits with a model.

Each image goes through :func:`digitnet.imaging.preprocess` (the MNIST authors' recipe: ink made
white on black, cropped, fitted into 20x20, centred by its centre of mass in 28x28); every image
that comes through is classified in one ``predict_proba`` call. An image that cannot be read
(missing, empty, not an image, truncated, blank, a possible decompression bomb) gets one error
line, or an error object with ``--json``, and the others are still answered; the exit status is
1 if any image failed, 0 when every one was answered.

A photo of a number written on one line is read digit by digit, left to right (see
:meth:`digitnet.predictor.Predictor.read`). An answer that is not a confident digit (a dot, a
scribble, a letter, ink touching the image's edge, a best digit under the calibrated probability)
is printed with "not sure" and the reason, on the same line; ``--json`` carries ``confident`` and
``reason``.

``--show DIR`` writes, for each answered image, the 28x28 image the network actually read, white
digit on black as MNIST's are: ``DIR/<stem>.28x28.png`` at its true size (the network's input
to 1/255; ``digitnet predict`` reads it back to the same answer) and ``DIR/<stem>.28x28.x8.png``
enlarged eight times, pixel for pixel, for looking at (for a number, ``<stem>.1.28x28.png``,
``<stem>.2.28x28.png``, ... one per digit), and ``DIR/<stem>.boxes.png``, the image with a box
around each digit found. A stem given twice in one call becomes ``<stem>-2``, ``<stem>-3``, ...

Only the standard library is imported at the top: NumPy, Pillow, SciPy and safetensors load in
the handler, and nothing else (no plotting, no torch, no downloader).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from digitnet.commands import MODEL_FILE, Formatter, model_path

PREDICT_EXAMPLES = """\
examples:
  digitnet predict runs/best seven.jpg                 # a run folder holding model.safetensors
  digitnet predict model.safetensors scan1.png scan2.png drawing.png
  digitnet predict runs/best photos/*.jpg --show seen  # seen/<name>.28x28.png: what it read
  digitnet predict runs/best a.jpg b.jpg --json        # one JSON object per image, in order

output (one line per image, in the order given):
  seven.jpg: 7 (98.2 %)   then 1 (1.1 %), 9 (0.3 %)
  number.jpg: 42   (4: 97.9 %, 2: 95.0 %)
  dot.jpg: not sure (best guess 8, 31.0 %): a dot or a solid block, not the strokes of a digit
  error: blank.png: no digit found: the image looks blank (...)   (on stderr; exit status 1)
  hint: ...                                                          (what to do about it)

--json prints an array, one object per image in the order given:
  {"image": PATH, "prediction": INT, "probabilities": [10 floats], "top3": [[DIGIT, P], ...],
   "confident": BOOL, "reason": TEXT or null, "number": "7",
   "digits": [{"box": [X, Y, W, H], "prediction": ..., "probabilities": ..., "top3": ...,
               "confident": ..., "reason": ...}, ...]}
  (for a number of several digits, prediction, probabilities and top3 are null)
  with --show, "shown": [the files written]
  {"image": PATH, "error": MESSAGE}
"""

SHOW_SCALE = 8


def register(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser(
        "predict",
        help="read your own photos, scans or drawings of digits with a trained model",
        description="Classify photos, scans or drawings of single digits with a trained model "
        "and print the three likeliest digits of each, with their probabilities. Each image is "
        "first made into an MNIST digit: ink made white on black, cropped, fitted into 20x20 "
        "and centred in 28x28, as MNIST's own digits were made. Images that cannot be read get "
        "one error line each and the others are still answered; the exit status is 1 if any "
        "image failed.",
        epilog=PREDICT_EXAMPLES,
        formatter_class=Formatter,
    )
    predict.add_argument(
        "model",
        metavar="MODEL",
        help=f"a model file, or a run folder holding {MODEL_FILE} ('digitnet train --out DIR')",
    )
    predict.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="image files (PNG, JPEG or any format Pillow reads): one digit, or a number "
        "written on one line, each",
    )
    predict.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array, one object per image in the order given",
    )
    predict.add_argument(
        "--show",
        metavar="DIR",
        help="write the 28x28 image the network read for each image: DIR/<stem>.28x28.png "
        "(true size) and DIR/<stem>.28x28.x8.png (eight times larger), <stem>.1.28x28.png ... "
        "for each digit of a number, and DIR/<stem>.boxes.png (the image with the digits found "
        "boxed); DIR is created if needed",
    )
    predict.set_defaults(handler=cmd_predict)


# -- the model ------------------------------------------------------------------------------
def _load(text: str) -> Any:
    from digitnet.predictor import Predictor

    return Predictor(model_path(text))


# -- the images -----------------------------------------------------------------------------
def _one_line(exc: BaseException, image: str, *, with_hint: bool = True) -> str:
    """An error about one image as one line that starts with the image's path (and, for
    --json, its hint in brackets)."""
    from digitnet.errors import DigitnetError

    if isinstance(exc, DigitnetError):
        text = exc.message + (f" (hint: {exc.hint})" if exc.hint and with_hint else "")
    else:
        text = f"unexpected {type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if text.startswith(f"{image}: ") else f"{image}: {text}"


def _hint(exc: BaseException, image: str) -> str | None:
    """What to do about an image that failed: the error's own hint, or for a folder, its files."""
    hint = getattr(exc, "hint", None)
    if hint is None and Path(image).is_dir():
        folder = image.rstrip("/") or "/"
        hint = f"give the images inside it, such as {folder}/*.png"
    return " ".join(hint.split()) if hint else None


def _is_model(text: str) -> bool:
    """Whether ``text`` names a model: a .safetensors file or a folder holding one."""
    path = Path(text).expanduser()
    return (path.is_dir() and (path / MODEL_FILE).is_file()) or (
        path.is_file() and path.suffix == ".safetensors"
    )


def _check_order(model: str, images: list[str]) -> None:
    """``predict IMAGE RUN``: say that the model comes first, not that an image is no model."""
    import shlex

    from digitnet.errors import ConfigError

    if _is_model(model):
        return
    found = next((image for image in images if _is_model(image)), None)
    if found is not None:
        rest = [found] + [model] + [i for i in images if i != found]
        raise ConfigError(
            f"{model}: the model comes first, then the images ({found} is the model).",
            "digitnet predict " + " ".join(shlex.quote(word) for word in rest),
        )


def _show_names(images: list[str], answered: list[int]) -> dict[int, str]:
    """A distinct file stem for each answered image: its own, then ``-2``, ``-3`` on a clash."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for i in answered:
        stem = Path(images[i]).stem or "image"
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        names[i] = name
    return names


def _png(image: Any, scale: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255)
    img = Image.fromarray(pixels.astype(np.uint8), mode="L")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _show_dir(text: str) -> Path:
    from digitnet.errors import ConfigError

    path = Path(text).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"--show {text}: is a file, not a folder.") from None
    except OSError as exc:
        raise ConfigError(
            f"--show {text}: cannot create the folder ({exc.strerror or exc})."
        ) from None
    return path


def _write_shown(folder: Path, name: str, images: list[Any], source: str, boxes: list) -> list:
    """Writes what the network read of one image, and the image with its boxes; returns the
    paths written."""
    from digitnet.files import write_atomic

    written = []
    for k, image in enumerate(images, start=1):
        stem = name if len(images) == 1 else f"{name}.{k}"
        for scale, suffix in ((1, ""), (SHOW_SCALE, f".x{SHOW_SCALE}")):
            path = folder / f"{stem}.28x28{suffix}.png"
            write_atomic(path, _png(image, scale))
            written.append(path)
    path = folder / f"{name}.boxes.png"
    write_atomic(path, _boxes_png(source, boxes))
    written.append(path)
    return written


def _boxes_png(source: str, boxes: list) -> bytes:
    """The image, at most 1024 pixels a side, with a numbered red box around each digit."""
    import io

    from PIL import Image, ImageDraw, ImageOps

    with Image.open(source) as img:
        img.seek(0)
        picture = ImageOps.exif_transpose(img.convert("RGB"))
    scale = min(1.0, 1024 / max(picture.size))
    if scale < 1.0:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.BOX)
    draw = ImageDraw.Draw(picture)
    line = max(2, round(max(picture.size) / 300))
    for k, (x, y, w, h) in enumerate(boxes, start=1):
        x0, y0 = x * scale - line, y * scale - line
        x1, y1 = (x + w) * scale + line, (y + h) * scale + line
        draw.rectangle([x0, y0, x1, y1], outline=(230, 20, 20), width=line)
        if len(boxes) > 1:
            draw.text((x0, max(0, y0 - 12)), str(k), fill=(230, 20, 20))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


# -- output ---------------------------------------------------------------------------------
def _percent(p: float) -> str:
    value = 100.0 * p
    if 99.95 <= value < 100.0:
        return ">99.9 %"
    if 0.0 < value < 0.05:
        return "<0.1 %"
    return f"{value:.1f} %"


def _label(names: list[str], k: int) -> str:
    return str(k) if names[k] == str(k) else f"{k} {names[k]}"


def _human_line(image: str, width: int, answer: dict[str, Any], names: list[str]) -> str:
    head = f"{image + ':':<{width + 1}} "
    digits = answer["digits"]
    if len(digits) == 1:
        top = answer["top3"]
        best, rest = top[0], top[1:]
        if not answer["confident"]:
            guess = f"{_label(names, best[0])}, {_percent(best[1])}"
            return f"{head}not sure (best guess {guess}): {answer['reason']}"
        line = f"{head}{_label(names, best[0])} ({_percent(best[1])})"
        if rest:
            line += "   then " + ", ".join(f"{_label(names, k)} ({_percent(p)})" for k, p in rest)
        return line
    each = ", ".join(f"{d['prediction']}: {_percent(d['top3'][0][1])}" for d in digits)
    if not answer["confident"]:
        return f"{head}not sure (best guess {answer['number']}; {each}): {answer['reason']}"
    return f"{head}{answer['number']}   ({each})"


# -- the command ----------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    _check_order(args.model, list(args.images))
    show = _show_dir(args.show) if args.show else None
    predictor = _load(args.model)
    names = predictor.classes
    images: list[str] = list(args.images)
    seen: dict[int, list[Any]] = {}  # index -> the (28, 28) images the network read
    answers: dict[int, dict[str, Any]] = {}
    errors: dict[int, str] = {}  # index -> the error line (--json: with its hint)
    hints: dict[int, str | None] = {}
    for i, image in enumerate(images):
        try:
            answers[i], seen[i] = predictor.read(image)
        except Exception as exc:  # one bad image must not stop the others
            if getattr(args, "traceback", False):
                raise
            errors[i] = _one_line(exc, image, with_hint=args.json)
            hints[i] = _hint(exc, image)
            if args.json and hints[i] and not getattr(exc, "hint", None):
                errors[i] += f" (hint: {hints[i]})"
    answered = sorted(seen)
    unwritten: list[str] = []  # --show files that could not be written
    shown: dict[int, list[str]] = {}  # index -> the files --show wrote for it
    if show is not None:
        for i, name in _show_names(images, answered).items():
            boxes = [d["box"] for d in answers[i]["digits"]]
            try:
                shown[i] = [str(p) for p in _write_shown(show, name, seen[i], images[i], boxes)]
            except OSError as exc:
                unwritten.append(
                    f"{images[i]}: answered, but --show could not write into {show} "
                    f"({exc.strerror or exc})."
                )
    if args.json:
        records: list[dict[str, Any]] = []
        for i, image in enumerate(images):
            if i in answers:
                extra = {"shown": shown[i]} if i in shown else {}
                records.append({"image": image, **answers[i], **extra})
            else:
                records.append({"image": image, "error": errors[i]})
        body = ",\n".join(" " + json.dumps(r, ensure_ascii=False) for r in records)
        print(f"[\n{body}\n]" if records else "[]")
    else:
        width = max((len(images[i]) for i in answered), default=0)
        for i, image in enumerate(images):
            if i in answers:
                print(_human_line(image, width, answers[i], names), flush=True)
            else:
                hint = f"\nhint: {hints[i]}" if hints[i] else ""
                print(f"error: {errors[i]}{hint}", file=sys.stderr, flush=True)
    if shown:  # where to look (on stderr with --json, whose stdout is JSON only)
        example = next(f for f in next(iter(shown.values())) if f".28x28.x{SHOW_SCALE}." in f)
        print(
            f"--show: wrote what the network read for {len(shown)} image"
            f"{'' if len(shown) == 1 else 's'} into {show}/ (such as {example}, "
            f"{SHOW_SCALE} times larger, beside the 28x28 original), and each image with the boxes "
            f"of the digits found (NAME.boxes.png)",
            file=sys.stderr if args.json else sys.stdout,
        )
    sys.stdout.flush()
    for text in unwritten:
        print(f"error: {text}", file=sys.stderr)
    return 1 if errors or unwritten else 0
