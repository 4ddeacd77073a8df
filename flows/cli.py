"""The `trainflow` command: run pipelines, predict with the champion.

Heavy imports (Prefect, TensorFlow, MLflow) happen inside the commands, after the noise
settings below are in place, so `trainflow --help` is instant and quiet.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUIET_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MPLBACKEND": "Agg",
}


def _run_energy(args: argparse.Namespace) -> list[dict[str, Any]]:
    from flows.energy import EnergyParameters, energy_pipeline

    params = EnergyParameters(
        seed=args.seed, preset=args.preset, epochs=args.epochs, source=args.source
    )
    return [energy_pipeline(params)]


def _run_siamese(args: argparse.Namespace) -> list[dict[str, Any]]:
    from flows.siamese import SiameseParameters, siamese_pipeline

    params = SiameseParameters(seed=args.seed, preset=args.preset, epochs=args.epochs)
    return [siamese_pipeline(params)]


PIPELINES = {"energy": _run_energy, "siamese": _run_siamese}


def _print_summary(summary: dict[str, Any]) -> None:
    metrics = summary["metrics"]
    shown = ", ".join(
        f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith(("rmse", "accuracy", "auc"))
    )
    state = "new version" if summary["newly_registered"] else "no new version"
    verdict = "champion" if summary["promoted"] else "not promoted"
    print(f"{summary['pipeline']}: {shown}")
    print(f"  {summary['model']} v{summary['version']} ({state}, {verdict}): {summary['reason']}")


def run(args: argparse.Namespace) -> int:
    """Run one pipeline, or all of them; one failing does not stop the others."""
    if args.pipeline != "all":
        for summary in PIPELINES[args.pipeline](args):
            _print_summary(summary)
        return 0
    failed = []
    for name, pipeline in PIPELINES.items():
        try:
            for summary in pipeline(args):
                _print_summary(summary)
        except Exception as error:
            print(f"trainflow: error: {name}: {error}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


def predict(args: argparse.Namespace) -> int:
    if args.pipeline == "siamese":
        return predict_pair(args)
    from lib.predict import predict_energy

    frame = predict_energy(Path(args.input))
    if args.output:
        _write_frame(frame, Path(args.output))
        print(f"{len(frame)} predictions written to {args.output}")
    else:
        print(frame.to_string(index=False))
    return 0


def predict_pair(args: argparse.Namespace) -> int:
    from lib.predict import predict_siamese

    distance, same = predict_siamese(Path(args.left), Path(args.right), invert=args.invert)
    print(f"distance {distance:.4f}: {'same' if same else 'different'} kind of article")
    return 0


def _write_frame(frame: Any, target: Path) -> None:
    from lib.atomic import atomic_path

    writers = {".csv": "to_csv", ".parquet": "to_parquet", ".xlsx": "to_excel"}
    if target.suffix not in writers:
        raise ValueError(f"Expected --output ending in {', '.join(writers)}. Received: {target}")
    with atomic_path(target) as temporary:
        getattr(frame, writers[target.suffix])(temporary, index=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run_parser = commands.add_parser("run", help="run a pipeline as a Prefect flow")
    run_parser.add_argument("pipeline", choices=[*PIPELINES, "all"])
    run_parser.add_argument("--seed", type=int, default=0, help="seed of split and weights")
    run_parser.add_argument(
        "--preset", choices=["default", "course"], default="default", help="training recipe"
    )
    run_parser.add_argument(
        "--epochs", type=int, default=None, help="override the preset's number of epochs"
    )
    run_parser.add_argument(
        "--source",
        default=None,
        help="energy only: your own workbook (path or URL) of the same schema",
    )
    run_parser.set_defaults(handler=run)

    predict_parser = commands.add_parser("predict", help="predict with the champion model")
    predict_commands = predict_parser.add_subparsers(dest="pipeline", required=True)
    energy = predict_commands.add_parser("energy", help="heating/cooling loads from X1..X8")
    energy.add_argument("input", help="a .xlsx, .csv or .parquet file with columns X1..X8")
    energy.add_argument("--output", help="write .csv/.parquet/.xlsx instead of printing")
    energy.set_defaults(handler=predict)
    siamese = predict_commands.add_parser("siamese", help="are two images the same kind?")
    siamese.add_argument("left", help="PNG/JPEG image of any size (converted to 28x28 gray)")
    siamese.add_argument("right", help="PNG/JPEG image of any size (converted to 28x28 gray)")
    siamese.add_argument(
        "--invert", action="store_true", help="dark garment on a light background (photos)"
    )
    siamese.set_defaults(handler=predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; failures print one line on stderr and exit 1, not a traceback."""
    for key, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(key, value)
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the CLI's boundary: a message, not a traceback
        print(f"trainflow: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
