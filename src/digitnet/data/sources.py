"""Known data files, their digests and where they come from: data only, no code that fetches.

Digests are SHA-256. ``gz_sha256`` is the digest of a distributed ``.gz`` file as published;
``sha256`` is the digest of the decompressed IDX bytes (it is the same whichever gzip wrote the
file). The embedded copy is checked by ``sha256``; a downloaded or cached file by ``gz_sha256``
(or ``sha256`` where known); a system package's copy by ``sha256``, since its gzip headers differ.

:mod:`digitnet.data.download` reads these tables; they are frozen dataclasses so that a test can
build its own with mirrors on 127.0.0.1 and pass it in place of the real one.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# -- datasets that digitnet can download --------------------------------------------------------
# Published digests: md5 from pytorch/vision (torchvision/datasets/mnist.py), size and sha256 from
# tensorflow/datasets (url_checksums/<name>.txt); the decompressed Fashion-MNIST digests were
# checked against both the published files and Debian's package dataset-fashion-mnist.


@dataclass(frozen=True)
class FileSource:
    """One distributed file of a dataset, and the digests that prove a copy is that file.

    ``filename`` is the name under which the mirrors publish it (a ``.gz``). ``gz_sha256`` (and
    ``size``, ``md5``) describe those published bytes. ``sha256`` is the digest of the
    *decompressed* IDX bytes, where it is known: it still holds for a copy that another gzip
    rewrote (Debian's Fashion-MNIST), where ``gz_sha256`` does not. A copy is verified when either
    digest matches. ``shape`` is the array the file holds, when it should be checked.
    """

    role: str
    filename: str
    gz_sha256: str
    sha256: str | None = None
    size: int | None = None
    md5: str | None = None
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's four files come from: mirrors tried in turn, and system folders.

    ``mirrors`` are base URLs ending in ``/``; a file's URL is the mirror plus its ``filename``.
    ``system_dirs`` are folders that a system package fills (Debian's ``dataset-fashion-mnist``
    puts Fashion-MNIST in ``/usr/share/datasets/fashion-mnist``); files there are used without a
    download, after the same check. ``fallback`` names the dataset to train on instead when this
    one cannot be had (MNIST falls back to the embedded digits, which are MNIST too).

    Tests build their own (``dataclasses.replace(MNIST, mirrors=(...,))``) to point the
    downloader at a server on 127.0.0.1.
    """

    name: str
    title: str
    mirrors: tuple[str, ...]
    files: tuple[FileSource, ...]
    system_dirs: tuple[str, ...] = ()
    system_package: str | None = None
    classes: tuple[str, ...] = tuple(str(d) for d in range(10))
    credit: str = ""
    fallback: str | None = None

    def file(self, role: str) -> FileSource:
        """The file of a role (``train-images``, ``train-labels``, ``test-images``...)."""
        for f in self.files:
            if f.role == role:
                return f
        raise KeyError(role)

    @property
    def download_size(self) -> int:
        """Bytes of the four ``.gz`` files as published (0 where a size is unknown)."""
        return sum(f.size or 0 for f in self.files)


MNIST = DatasetSource(
    name="mnist",
    title="MNIST",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    files=(
        FileSource(
            "train-images",
            "train-images-idx3-ubyte.gz",
            gz_sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            size=9912422,
            md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
            shape=(60000, 28, 28),
        ),
        FileSource(
            "train-labels",
            "train-labels-idx1-ubyte.gz",
            gz_sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            size=28881,
            md5="d53e105ee54ea40749a09fcbcd1e9432",
            shape=(60000,),
        ),
        FileSource(
            "test-images",
            "t10k-images-idx3-ubyte.gz",
            gz_sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            sha256=EMBEDDED["test-images"]["sha256"],  # the embedded test set is the official one
            size=1648877,
            md5="9fb629c4189551a2d022fa330f9573f3",
            shape=(10000, 28, 28),
        ),
        FileSource(
            "test-labels",
            "t10k-labels-idx1-ubyte.gz",
            gz_sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            sha256=EMBEDDED["test-labels"]["sha256"],
            size=4542,
            md5="ec29112dd5afa0611ce80d1b7f02629c",
            shape=(10000,),
        ),
    ),
    credit=MNIST_CREDIT,
    fallback="embedded",
)

FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    files=(
        FileSource(
            "train-images",
            "train-images-idx3-ubyte.gz",
            gz_sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            size=26421880,
            md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            shape=(60000, 28, 28),
        ),
        FileSource(
            "train-labels",
            "train-labels-idx1-ubyte.gz",
            gz_sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            size=29515,
            md5="25c81989df183df01b3e8a0aad5dffbe",
            shape=(60000,),
        ),
        FileSource(
            "test-images",
            "t10k-images-idx3-ubyte.gz",
            gz_sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            size=4422102,
            md5="bef4ecab320f06d8554ea6380940ec79",
            shape=(10000, 28, 28),
        ),
        FileSource(
            "test-labels",
            "t10k-labels-idx1-ubyte.gz",
            gz_sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            size=5148,
            md5="bb300cfdad3c16e7a12a480ee83cd310",
            shape=(10000,),
        ),
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    system_package="dataset-fashion-mnist",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    credit="Fashion-MNIST by Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research), "
    "MIT licence (https://github.com/zalandoresearch/fashion-mnist).",
)

KMNIST = DatasetSource(
    name="kmnist",
    title="Kuzushiji-MNIST",
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    files=(
        FileSource(
            "train-images",
            "train-images-idx3-ubyte.gz",
            gz_sha256="51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            size=18165135,
            md5="bdb82020997e1d708af4cf47b453dcf7",
            shape=(60000, 28, 28),
        ),
        FileSource(
            "train-labels",
            "train-labels-idx1-ubyte.gz",
            gz_sha256="e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            size=29497,
            md5="e144d726b3acfaa3e44228e80efcd344",
            shape=(60000,),
        ),
        FileSource(
            "test-images",
            "t10k-images-idx3-ubyte.gz",
            gz_sha256="edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            size=3041136,
            md5="5c965bf0a639b31b8f53240b1b52f4d7",
            shape=(10000, 28, 28),
        ),
        FileSource(
            "test-labels",
            "t10k-labels-idx1-ubyte.gz",
            gz_sha256="20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
            size=5120,
            md5="7320c461ea6c1c855c0b718fb2a4b134",
            shape=(10000,),
        ),
    ),
    # The ten hiragana of the classes, in label order (kmnist_classmap.csv).
    classes=("お", "き", "す", "つ", "な", "は", "ま", "や", "れ", "を"),
    credit="Kuzushiji-MNIST by Tarin Clanuwat et al. (ROIS-DS Center for Open Data in the "
    "Humanities, NII), CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).",
)

#: The datasets that digitnet can download, by the name ``--dataset`` takes.
DOWNLOADABLE: dict[str, DatasetSource] = {s.name: s for s in (MNIST, FASHION_MNIST, KMNIST)}

#: Every name ``--dataset`` takes, in the order ``digitnet data list`` shows them.
DATASET_NAMES = (*DOWNLOADABLE, "embedded")
