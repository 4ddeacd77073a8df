"""The `trainflow` command: run pipelines, predict with or serve the champion, run schedules, UIs.

Heavy imports (Prefect, TensorFlow, MLflow) happen inside the commands, after the noise
settings below are in place, so `trainflow --help` is instant and quiet. `--help` shows
`DESCRIPTION`, written for the person at the terminal, not this docstring.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flows.servers import serve_model, ui
from flows.summaries import JSON_HELP
from lib.core.quiet import quiet_tensorflow_import
from lib.core.settings import (
    MLFLOW_UI_PORT,
    MODEL_SERVER_PORT,
    PREFECT_UI_PORT,
    UI_HOST,
    VERBOSE_VARIABLE,
)

# TensorFlow's own log level: 3 keeps "failed call to cuInit" (an ERROR line on every machine
# without a GPU) off the terminal; its import-time banner ignores it (see lib.core.quiet).
# MLflow's INFO lines are its database set-up ("Creating initial MLflow database tables...").
# Against a tracking server MLflow also writes "View run ... at: <url>" to stdout as each run
# ends, where the summary (and `--json`'s one document) must be all there is.
QUIET_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MPLBACKEND": "Agg",
    "DO_NOT_TRACK": "1",
}
# Prefect's ephemeral API gives itself 20 s to start; a first run (fresh database) on a busy
# laptop took longer and failed with "Timed out while attempting to connect". Two CLI runs at
# once share that SQLite database (one `PREFECT_HOME`, so `trainflow ui` shows both): each
# waits up to 60 s for the other's write instead of Prefect's 10 s ("database is locked").
EPHEMERAL_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
}
DESCRIPTION = (
    "Train, evaluate and register Keras models as Prefect flows, with an MLflow model "
    "registry: 'energy' predicts a building's heating and cooling loads (UCI ENB2012), "
    "'siamese' tells whether two Fashion-MNIST images show the same kind of article. A new "
    "model becomes the 'champion' only when it beats the current one on the same test data; "
    "'predict' uses the champion. Downloads, models and the registry live in $TRAINFLOW_HOME "
    "(default ~/.trainflow)."
)
PIPELINE_HELP = (
    "energy: building heating/cooling loads from the UCI ENB2012 workbook; siamese: "
    "Fashion-MNIST same-or-different; all: both, one after the other"
)
SWEEP_DESCRIPTION = (
    "Train every combination of --seeds and --set recipe values as trials on a Dask cluster "
    "(a local one of --workers processes, or --dask-address), pick the trial with the best "
    "validation score (energy: mean RMSE of Y1 and Y2; siamese: pair accuracy), evaluate it "
    "on the test data and register it behind the champion gate, as `run` does. Each trial's "
    "training is cached: a re-run trains only trials it has not seen. Ends with a table of "
    "the trials and the winner's summary."
)
DRIFT_EXIT = 3
"""`trainflow check`'s exit code when the data drifted (0: no drift, 1: invalid input)."""
RUN_DESCRIPTION = (
    "Run a pipeline as a Prefect flow and end with a summary table per pipeline: test "
    "metrics beside the champion's, the version registered, the decision and its MLflow link. "
    "On a terminal each training draws a progress bar; the log has a line per tenth of the "
    "epochs (where stderr is not a terminal, those lines are all there is)."
)


def _parameters(model: type[Any], **options: Any) -> Any:
    """The pipeline's parameters from command-line options; a bad value is one `InputError`.

    The parameter models double as the Prefect UI's schema, so their bounds are checked here
    rather than again by argparse; pydantic's own message spans lines and links its docs.
    """
    from pydantic import ValidationError

    from lib.core.errors import InputError

    try:
        return model(**options)
    except ValidationError as error:
        problems = [
            f"--{'.'.join(map(str, problem['loc'])).replace('_', '-')} "
            f"{problem['input']}: {problem['msg'][:1].lower()}{problem['msg'][1:]}"
            for problem in error.errors()
        ]
        raise InputError(f"Invalid option {'; '.join(problems)}") from None


def _run_energy(args: argparse.Namespace) -> Any:
    from flows.energy import EnergyParameters, energy_pipeline

    params = _parameters(
        EnergyParameters, seed=args.seed, preset=args.preset, epochs=args.epochs, source=args.source
    )
    return energy_pipeline(params, return_state=True)


def _run_siamese(args: argparse.Namespace) -> Any:
    from flows.siamese import SiameseParameters, siamese_pipeline

    if args.pipeline == "siamese" and args.source:  # `run all --source` is energy's
        from lib.core.errors import InputError

        raise InputError("--source is for `run energy` (your own workbook); siamese takes none")
    params = _parameters(SiameseParameters, seed=args.seed, preset=args.preset, epochs=args.epochs)
    return siamese_pipeline(params, return_state=True)


PIPELINES = {"energy": _run_energy, "siamese": _run_siamese}


def run(args: argparse.Namespace) -> int:
    """Run one pipeline, or all of them; one failing does not stop the others.

    The summary comes last (tables, or `--json`'s document), then each failure's one line.
    """
    from flows.summaries import Outcome, as_json, print_tables
    from flows.terminal import console_for
    from lib.core.malloc import cap_arenas

    cap_arenas()  # this process trains: cap before TensorFlow starts its thread pools
    names = list(PIPELINES) if args.pipeline == "all" else [args.pipeline]
    outcomes: list[Outcome] = []
    failures: list[tuple[str, Exception]] = []
    finished: list[Any] = []
    with console_for(quiet=args.quiet, json=args.json):
        for name in names:
            try:
                state = PIPELINES[name](args)
                outcomes.append(Outcome(name, summary=state.result()))
                finished.append(state.state_details.flow_run_id)
            except Exception as error:
                outcomes.append(Outcome(name, error=str(error)))
                failures.append((name, error))
        _keep_history(finished)
    if args.json:
        print(as_json(outcomes))
    else:
        print_tables([o.summary for o in outcomes if o.summary is not None], sys.stdout)
    for name, failure in failures:
        report(failure, args.verbose, prefix=f"{name}: " if len(names) > 1 else "")
    return 1 if failures else 0


def sweep(args: argparse.Namespace) -> int:
    """Run a sweep: the trials on Dask, the winner on validation registered behind the gate.

    A bad `--seeds` or `--set` fails here, in one line, before Prefect or Dask start.
    """
    from flows.cluster import QUIET_VARIABLE
    from flows.sweep import SweepParameters, plan, sweep_pipeline
    from flows.sweep_summaries import print_sweep, sweep_json
    from flows.terminal import console_for
    from lib.core.malloc import cap_arenas

    params = _parameters(
        SweepParameters,
        pipeline=args.pipeline,
        seeds=args.seeds,
        values=tuple(args.values),
        preset=args.preset,
        source=args.source,
        workers=args.workers,
        dask_address=args.dask_address,
    )
    trials = plan(params)
    cap_arenas()
    if args.quiet:
        os.environ[QUIET_VARIABLE] = "1"  # the local Dask workers' terminal output too
    with console_for(quiet=args.quiet, json=args.json):
        if not args.json:
            print(f"sweep: {len(trials)} trials of {args.pipeline}", file=sys.stderr)
        state = sweep_pipeline(params, return_state=True)
        summary = state.result()  # raises the failure, which `main` prints in one line
        _keep_history([state.state_details.flow_run_id])
    if args.json:
        print(sweep_json(summary))
    else:
        print_sweep(summary, sys.stdout)
    return 0


def _keep_history(flow_run_ids: list[Any]) -> None:
    """On Prefect's ephemeral API, let the runs' last task records land before exiting."""
    from prefect.settings import get_current_settings

    from flows.records import wait_until_recorded

    if get_current_settings().api.url is None:
        wait_until_recorded(flow_run_ids)


def predict(args: argparse.Namespace) -> int:
    if args.pipeline == "siamese":
        return predict_pair(args)
    from lib.energy.predict import predict_energy

    frame = predict_energy(Path(args.input))
    if args.output:
        _write_frame(frame, Path(args.output))
        print(f"{len(frame)} predictions written to {args.output}")
    else:
        print(frame.to_string(index=False))
    return 0


def predict_pair(args: argparse.Namespace) -> int:
    from lib.siamese.predict import predict_siamese

    distance, same = predict_siamese(Path(args.left), Path(args.right), invert=args.invert)
    print(f"distance {distance:.4f}: {'same' if same else 'different'} kind of article")
    return 0


def check(args: argparse.Namespace) -> int:
    """New data against the champion's training data, without Prefect or TensorFlow.

    Exit 0 when nothing drifted, `DRIFT_EXIT` when something did; invalid input and a
    missing champion fail with exit 1 (in `main`) before anything is printed here.
    """
    import json
    from dataclasses import asdict

    from lib.core.drift import text_table

    if args.pipeline == "siamese":
        from lib.siamese.check import check_siamese
        from lib.siamese.constants import MODEL_NAME

        given = f"{args.images} + {args.labels}"
        version, report = check_siamese(Path(args.images), Path(args.labels))
    else:
        from lib.energy.check import check_energy
        from lib.energy.constants import MODEL_NAME

        given = args.workbook
        version, report = check_energy(Path(args.workbook))
    reference = f"{MODEL_NAME} v{version}'s training data"
    if report.drifted:
        verdict = f"DRIFT: {given} differs from {reference} in {', '.join(report.flagged)}"
    else:
        verdict = f"no drift: {given} against {reference}"
    verdict += f" ({report.sizes()})"
    if args.json:
        document = {"model": MODEL_NAME, "champion_version": version, "drifted": report.drifted}
        print(json.dumps({**document, "verdict": verdict, **asdict(report)}, indent=1))
    else:
        print(text_table(report.rows()))
        print(verdict)
    return DRIFT_EXIT if report.drifted else 0


def serve(args: argparse.Namespace) -> int:
    """Run the scheduled deployments of prefect.yaml in this process, without a work pool.

    Pick one of `serve` and `prefect deploy` per Prefect server: both write deployments of
    the same names, and a served deployment left over a deployed one keeps its work pool but
    loses its pull step (its runs crash). Stopping `serve` pauses its schedules.
    """
    from prefect import serve as prefect_serve

    from flows.schedules import PLANS

    prefect_serve(*[plan.to_deployment() for plan in PLANS], limit=args.limit)
    return 0


def _write_frame(frame: Any, target: Path) -> None:
    from lib.core.atomic import atomic_path

    writers = {".csv": "to_csv", ".parquet": "to_parquet", ".xlsx": "to_excel"}
    if target.suffix not in writers:
        raise ValueError(f"Expected --output ending in {', '.join(writers)}. Received: {target}")
    with atomic_path(target) as temporary:
        getattr(frame, writers[target.suffix])(temporary, index=False)


def report(error: BaseException, verbose: bool, prefix: str = "") -> None:
    """Say on stderr, once, why a command failed; with `verbose` show the traceback first."""
    if verbose:
        traceback.print_exception(error)
    print(f"trainflow: error: {prefix}{error}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainflow", description=DESCRIPTION)
    verbose_help = "show tracebacks, also of expected failures (bad input, failed downloads)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # Also accepted after the command (`trainflow run energy -v`); SUPPRESS keeps the
    # subcommand from resetting a -v given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run_parser = commands.add_parser(
        "run",
        parents=[common],
        help="run a pipeline as a Prefect flow",
        description=RUN_DESCRIPTION,
        epilog=JSON_HELP,
    )
    run_parser.add_argument("pipeline", choices=[*PIPELINES, "all"], help=PIPELINE_HELP)
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
    output = run_parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help="print the summary as JSON on stdout (see below)"
    )
    output.add_argument(
        "--quiet", action="store_true", help="print only the summary (and errors, on stderr)"
    )
    run_parser.set_defaults(handler=run)

    predict_parser = commands.add_parser(
        "predict", parents=[common], help="predict with the champion model"
    )
    predict_commands = predict_parser.add_subparsers(dest="pipeline", required=True)
    energy = predict_commands.add_parser(
        "energy", parents=[common], help="heating/cooling loads from X1..X8"
    )
    energy.add_argument("input", help="a .xlsx, .csv or .parquet file with columns X1..X8")
    energy.add_argument("--output", help="write .csv/.parquet/.xlsx instead of printing")
    energy.set_defaults(handler=predict)
    siamese = predict_commands.add_parser(
        "siamese", parents=[common], help="are two images the same kind?"
    )
    siamese.add_argument("left", help="PNG/JPEG image of any size (converted to 28x28 gray)")
    siamese.add_argument("right", help="PNG/JPEG image of any size (converted to 28x28 gray)")
    siamese.add_argument(
        "--invert", action="store_true", help="dark garment on a light background (photos)"
    )
    siamese.set_defaults(handler=predict)

    _add_check(commands, common)
    _add_sweep(commands, common)

    serve_parser = commands.add_parser(
        "serve",
        parents=[common],
        help="run the prefect.yaml schedules and trigger here, without a work pool",
    )
    serve_parser.add_argument(
        "--limit", type=int, default=None, help="at most this many runs at once (default: any)"
    )
    serve_parser.set_defaults(handler=serve)

    ui_parser = commands.add_parser(
        "ui",
        parents=[common],
        help="start the Prefect and MLflow UIs on 127.0.0.1",
        description=(
            "Start the Prefect UI (flow runs, logs, reports) and the MLflow UI (training "
            "runs, registered models) on 127.0.0.1 and print direct links to each pipeline's "
            "runs and to the registered models. Ctrl-C stops both."
        ),
    )
    ui_parser.add_argument(
        "--prefect-port",
        type=int,
        default=PREFECT_UI_PORT,
        help=f"port of the Prefect UI: flow runs, logs, reports (default {PREFECT_UI_PORT})",
    )
    ui_parser.add_argument(
        "--mlflow-port",
        type=int,
        default=MLFLOW_UI_PORT,
        help=f"port of the MLflow UI: training runs, registered models (default {MLFLOW_UI_PORT})",
    )
    ui_parser.set_defaults(handler=ui)

    serve_model_parser = commands.add_parser(
        "serve-model",
        parents=[common],
        help="serve the champion over HTTP with MLflow's scoring server (/invocations, /ping)",
    )
    serve_model_parser.add_argument("pipeline", choices=list(PIPELINES))
    serve_model_parser.add_argument(
        "--host", default=UI_HOST, help=f"address to listen on (default {UI_HOST})"
    )
    serve_model_parser.add_argument(
        "--port", type=int, default=MODEL_SERVER_PORT, help=f"default {MODEL_SERVER_PORT}"
    )
    serve_model_parser.add_argument(
        "--version", type=int, default=None, help="serve this version instead of the champion"
    )
    serve_model_parser.set_defaults(handler=serve_model)
    return parser


def _add_check(commands: Any, common: argparse.ArgumentParser) -> None:
    check_parser = commands.add_parser(
        "check",
        parents=[common],
        help="compare new data with the champion's training data, without training "
        f"(exit 0 no drift, {DRIFT_EXIT} drift, 1 invalid input or no champion)",
    )
    check_commands = check_parser.add_subparsers(dest="pipeline", required=True)
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the report as JSON")
    energy = check_commands.add_parser(
        "energy", parents=[common, as_json], help="a workbook of X1..X8, Y1, Y2 (as `run`)"
    )
    energy.add_argument("workbook", help="an .xlsx workbook of the same schema as the UCI one")
    energy.set_defaults(handler=check)
    siamese = check_commands.add_parser(
        "siamese", parents=[common, as_json], help="IDX images and labels (as Fashion-MNIST)"
    )
    siamese.add_argument("--images", required=True, help="gzip IDX file of 28x28 uint8 images")
    siamese.add_argument("--labels", required=True, help="gzip IDX file of labels 0..9")
    siamese.set_defaults(handler=check)


def _add_sweep(commands: Any, common: argparse.ArgumentParser) -> None:
    from flows.sweep_summaries import SWEEP_JSON_HELP

    sweep_parser = commands.add_parser(
        "sweep",
        parents=[common],
        help="train many seeds and recipe values on Dask; register the best on validation",
        description=SWEEP_DESCRIPTION,
        epilog=SWEEP_JSON_HELP,
    )
    sweep_parser.add_argument(
        "pipeline", choices=list(PIPELINES), help=PIPELINE_HELP.rsplit("; all:", 1)[0]
    )
    sweep_parser.add_argument(
        "--seeds",
        default="0",
        help="seeds to try: a range 0-7, a list 0,2,5, or both (0-3,8); default 0",
    )
    sweep_parser.add_argument(
        "--set",
        dest="values",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="recipe values to try, e.g. learning_rate=0.01,0.003 (repeat for more fields; "
        "every combination runs with every seed)",
    )
    sweep_parser.add_argument(
        "--preset", choices=["default", "course"], default="default", help="the base recipe"
    )
    sweep_parser.add_argument(
        "--source", default=None, help="energy only: your own workbook (path or URL)"
    )
    where = sweep_parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of a local Dask cluster, one thread each (default 2)",
    )
    where.add_argument(
        "--dask-address",
        default=None,
        help="an existing Dask scheduler (tcp://host:8786) instead of a local cluster",
    )
    output = sweep_parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the summary as JSON")
    output.add_argument("--quiet", action="store_true", help="print only the summary")
    sweep_parser.set_defaults(handler=sweep)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a failure prints its message once on stderr and exits 1.

    Expected failures (`lib.core.errors.ExpectedError`) print no traceback anywhere, Prefect's
    run logs included (`flows.failures`); an unexpected one keeps its traceback in the run's
    logs. `-v` prints the traceback of either here too.
    """
    for key, value in {**QUIET_DEFAULTS, **EPHEMERAL_DEFAULTS}.items():
        os.environ.setdefault(key, value)
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_VARIABLE] = "1"  # flows read it, in this process and in `serve`'s
    quiet_tensorflow_import()
    # A scheduler or Kubernetes stops a run with SIGTERM first: unwind as on Ctrl-C, so the
    # run ends Crashed, training stops, and exit handlers stop the temporary API server
    # (killed outright by the default handler, it was left running as an orphan).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the CLI's boundary: a message, not a traceback
        report(error, args.verbose)
        return 1


if __name__ == "__main__":
    sys.exit(main())
