"""Copy the four mnist-10k files into the package, after checking them against their digests.

    python scripts/embed_mnist.py [../shared/datasets/mnist-10k]

Each source ``.gz`` must match the published SHA-256 of ``../shared/datasets/README.md``; the
package then stores the same IDX bytes re-gzipped without a time stamp (so the copy is
reproducible), and digitnet checks the decompressed bytes on every load.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from digitnet.data.idx import write_atomic  # noqa: E402
from digitnet.data.sources import EMBEDDED, FILENAMES  # noqa: E402


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "datasets" / "mnist-10k"
    dest = ROOT / "src" / "digitnet" / "data" / "embedded"
    dest.mkdir(parents=True, exist_ok=True)
    for role, info in EMBEDDED.items():
        path = src / f"{FILENAMES[role]}.gz"
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != info["gz_sha256"]:
            print(f"error: {path} does not match its published SHA-256; not copied.")
            return 1
        data = gzip.decompress(raw)
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            print(f"error: {path} decompresses to unexpected bytes; not copied.")
            return 1
        write_atomic(dest / path.name, gzip.compress(data, compresslevel=9, mtime=0))
        print(f"verified and embedded {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
