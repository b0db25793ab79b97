"""Known data files, their digests and where they come from: data only, no code that fetches.

Digests are SHA-256. ``gz_sha256`` is the digest of a distributed ``.gz`` file as published;
``sha256`` is the digest of the decompressed IDX bytes, which is what digitnet checks (it is the
same whichever gzip wrote the file).
"""

from __future__ import annotations

# The four files of each MNIST-format dataset, by role.
ROLES = ("train-images", "train-labels", "test-images", "test-labels")

FILENAMES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}

#: The embedded default: MNIST's first 10,000 training digits (in the official order) and the
#: official 10,000 test digits, shipped inside the package (digitnet/data/embedded/).
EMBEDDED = {
    "train-images": {
        "sha256": "2889698e6bc3614913e76901316712919d1998fc2b44512451bfe65bc1e668b1",
        "gz_sha256": "3ef602e995727b0a9aa7f5ddd860650f6d281e99ba21a746d1bfa6fea4a7f4d8",
        "shape": (10000, 28, 28),
    },
    "train-labels": {
        "sha256": "651e38e2ac0632f5113ec18f1df4977117f953197819034009971a6675a0df78",
        "gz_sha256": "dccde8b3c99723584f8090cef581b2e49d6be36b682abadf5a414714b48cf7ea",
        "shape": (10000,),
    },
    "test-images": {
        "sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "gz_sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "shape": (10000, 28, 28),
    },
    "test-labels": {
        "sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "gz_sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "shape": (10000,),
    },
}

MNIST_CREDIT = (
    "MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, "
    "licensed CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/)."
)
