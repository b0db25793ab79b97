"""``digitnet data``: list the datasets and download them ahead of time."""

from __future__ import annotations

import argparse

from digitnet.commands import Formatter, positive_float

DATA_EXAMPLES = """\
examples:
  digitnet data list                 # each dataset: where it would come from, present, verified
  digitnet data fetch mnist          # download full MNIST into the cache ahead of time
  DIGITNET_CACHE=/srv/digitnet digitnet data fetch kmnist     # a cache folder of your choice
"""


def register(sub: argparse._SubParsersAction) -> None:
    from digitnet.data.sources import DATASET_NAMES

    data = sub.add_parser(
        "data",
        help="list the datasets and download them ahead of time",
        description="The datasets digitnet trains on: the embedded digits (inside the "
        "package), and MNIST, Fashion-MNIST and Kuzushiji-MNIST, found in this order in a "
        "--data-dir folder (or $DIGITNET_DATA), the cache ($DIGITNET_CACHE or the user cache "
        "folder), a system package (Debian's dataset-fashion-mnist) or downloaded from their "
        "mirrors. Every file is checked against its published SHA-256 digest before use.",
        epilog=DATA_EXAMPLES,
        formatter_class=Formatter,
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    data_list = data_sub.add_parser(
        "list",
        help="each dataset, where it would come from, and whether it is present and verified",
        description="Show each dataset, where it would come from, and whether it is present "
        "and verified. Checks the files on disk; never touches the network.",
        formatter_class=Formatter,
    )
    data_list.set_defaults(handler=cmd_data_list)
    data_fetch = data_sub.add_parser(
        "fetch",
        help="download a dataset into the cache ahead of time",
        description="Download a dataset into the cache, trying its mirrors in turn and "
        "checking every file against its published digest, so that later runs need no "
        "network. Does nothing when the dataset is already present and verified.",
        formatter_class=Formatter,
    )
    data_fetch.add_argument(
        "name", metavar="DATASET", choices=DATASET_NAMES, help=f"one of {', '.join(DATASET_NAMES)}"
    )
    data_fetch.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help="how long to wait for a connection or for more bytes before trying the next "
        "mirror (default: $DIGITNET_TIMEOUT or 10)",
    )
    data_fetch.set_defaults(handler=cmd_data_fetch)


_STATES = {
    "verified": "present, verified",
    "partial": "partly present",
    "failed": "FAILS its check",
    "absent": "not present",
}


def cmd_data_list(args: argparse.Namespace) -> int:
    import os

    from digitnet.data.datasets import ENV_DATA, _embedded_dir, load_embedded
    from digitnet.data.download import ENV_CACHE, cache_dir, status
    from digitnet.data.sources import DOWNLOADABLE
    from digitnet.errors import DataError

    rows = []
    for name, source in DOWNLOADABLE.items():
        st = status(name)
        detail = f" ({st.detail})" if st.detail else ""
        where = st.where
        if st.state != "verified" and source.fallback:
            where += f"; else {source.fallback}"
        rows.append((name, _STATES[st.state] + detail, where))
    try:
        load_embedded()
        rows.append(("embedded", _STATES["verified"], f"inside the package: {_embedded_dir()}"))
    except DataError as exc:
        rows.append(("embedded", "FAILS its check", exc.message))
    print(f"cache: {cache_dir()}  (${ENV_CACHE} moves it)")
    if os.environ.get(ENV_DATA):
        print(
            f"${ENV_DATA}={os.environ[ENV_DATA]}: 'digitnet train' reads that folder for "
            "every dataset but embedded"
        )
    widths = [max(len(r[i]) for r in [*rows, ("dataset", "state", "")]) for i in (0, 1)]
    print(f"{'dataset':<{widths[0]}}  {'state':<{widths[1]}}  source")
    for name, state, where in rows:
        print(f"{name:<{widths[0]}}  {state:<{widths[1]}}  {where}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    if args.name == "embedded":
        print("embedded: inside the package; nothing to fetch")
        return 0
    from digitnet.data.download import fetch

    found = fetch(args.name, timeout=args.timeout, report=print)
    verb = {
        "cache": "already in the cache",
        "system": "already installed",
        "download": "downloaded and verified",
    }[found.how]
    print(f"{args.name}: {verb}: {found.where}")
    return 0
