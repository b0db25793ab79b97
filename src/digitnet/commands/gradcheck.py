"""``digitnet gradcheck``: compare backpropagation with finite differences."""

from __future__ import annotations

import argparse

from digitnet.commands import Formatter, positive_int, seed

GRADCHECK_EXAMPLES = """\
examples:
  digitnet gradcheck                            # 784-16-16-10, ReLU, cross-entropy
  digitnet gradcheck --layers 784-32-10 --activation sigmoid --loss mse
"""


def register(sub: argparse._SubParsersAction) -> None:
    from digitnet.presets_names import ACTIVATION_NAMES, LOSS_NAMES

    grad = sub.add_parser(
        "gradcheck",
        help="compare backpropagation with finite differences",
        description="Compare the gradients that backpropagation computes with finite "
        "differences, on a small random batch in float64, and print the relative error per "
        "layer and parameter. Below 1e-6 a gradient is right; around 1 it is wrong. The first "
        "thing to check when a network is stuck at 10 %.",
        epilog=GRADCHECK_EXAMPLES,
        formatter_class=Formatter,
    )
    grad.add_argument("--layers", default="784-16-16-10", metavar="SPEC", help="layer sizes")
    grad.add_argument(
        "--activation",
        default="relu",
        choices=ACTIVATION_NAMES,
        help="the hidden layers' activation",
    )
    grad.add_argument("--loss", default="ce", choices=LOSS_NAMES, help="the cost")
    grad.add_argument(
        "--batch", type=positive_int, default=8, metavar="M", help="examples in the random batch"
    )
    grad.add_argument(
        "--entries",
        type=positive_int,
        default=200,
        metavar="N",
        help="entries checked per parameter (a random sample when larger)",
    )
    grad.add_argument("--seed", type=seed, default=0, metavar="N", help="random seed")
    grad.set_defaults(handler=cmd_gradcheck)


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from digitnet.gradcheck import GOOD, gradcheck
    from digitnet.memory import check_fits, training_parts
    from digitnet.network import parse_spec

    # In float64, with the batch itself: refuse what cannot fit before allocating it.
    parts = training_parts(parse_spec(args.layers), args.batch, itemsize=8, slots=0)
    check_fits(
        f"a gradient check of {args.layers} on {args.batch:,} examples",
        [*parts, (f"{args.batch:,} examples", args.batch * parse_spec(args.layers)[0] * 8)],
        "a few examples are enough: --batch 8",
    )
    results = gradcheck(
        args.layers,
        args.activation,
        args.loss,
        m=args.batch,
        seed=args.seed,
        max_entries=args.entries,
    )
    print(
        f"gradient check: {args.layers}, {args.activation}, {args.loss}, float64, "
        f"{args.batch} random examples, central differences h = 1e-6"
    )
    print(f"{'layer':>5}  {'param':<5}  {'shape':>12}  {'checked':>7}  {'rel. error':>10}  verdict")
    for r in results:
        layer = r.parameter[1:]
        shape = "x".join(str(s) for s in r.shape)
        print(
            f"{layer:>5}  {r.parameter:<5}  {shape:>12}  {r.checked:>7}  "
            f"{r.relative_error:10.2e}  {r.verdict}"
        )
    bad = [r for r in results if r.relative_error >= GOOD]
    if bad:
        print(
            f"{len(bad)} parameter(s) disagree with finite differences: backpropagation is "
            "wrong for them."
        )
        return 1
    print("all gradients agree with finite differences (relative error < 1e-6).")
    return 0
