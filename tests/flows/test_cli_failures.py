"""What a user's terminal shows when `trainflow` fails: one line, no traceback, nothing written.

Each case runs the real CLI (`flows.cli` as ``__main__``) in a fresh process, as a user would:
its own TRAINFLOW_HOME, no mirror, no MLflow URI, Prefect's default logging and the CLI's own
quiet defaults (the test session's TF_CPP_MIN_LOG_LEVEL and PREFECT_LOGGING_LEVEL are removed).
The Prefect home is shared by the module, so the ephemeral API's database is migrated once.
The process also reports whether it imported TensorFlow: bad input must fail before it.
Every case that starts a flow takes 15-30 s (the ephemeral Prefect API starts each time).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from mlflow import MlflowClient

from lib.core.registry import CHAMPION_ALIAS
from lib.energy.constants import FEATURES, MODEL_NAME, WORKBOOK
from tests.e2e.servers import free_port
from tests.fixtures.energy import write_energy_workbook
from tests.fixtures.fresh_process import REPO_ROOT
from tests.fixtures.hostile import craft_xlsx, header_row
from tests.fixtures.unavailable import unavailable_server

CLI_SECONDS = 600
BANNER = (
    "oneDNN custom operations",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "All log messages before absl::InitializeLog()",
    "This TensorFlow binary is optimized",
)
# Runs `python -m flows.cli ARGS`, then writes whether TensorFlow was imported to REPORT.
RUNNER = (
    "import atexit, runpy, sys\n"
    "report = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(report, 'w').write(str('tensorflow' in sys.modules)))\n"
    "sys.argv[0] = 'trainflow'\n"
    "runpy.run_module('flows.cli', run_name='__main__', alter_sys=True)\n"
)
SESSION_ONLY = (
    "TF_CPP_MIN_LOG_LEVEL",
    "PREFECT_LOGGING_LEVEL",
    "PREFECT_API_URL",
    "TRAINFLOW_MIRROR",
    "MLFLOW_TRACKING_URI",
    "TRAINFLOW_SOURCE_ROOTS",
    "TRAINFLOW_VERBOSE",
)
GOOD_EPOCHS = "3"  # of the default's 5 passes each: R² over the gate's floor on 320 rows


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str  # stdout and stderr, as the terminal shows them
    tensorflow: bool  # whether the process imported TensorFlow
    home: Path

    @property
    def errors(self) -> list[str]:
        """The CLI's own error lines (a message may continue on the lines after)."""
        return [line for line in self.output.splitlines() if line.startswith("trainflow: error:")]

    @property
    def error(self) -> str:
        """The CLI's message with its continuation lines (up to the next log line)."""
        lines = self.output.splitlines()
        start = lines.index(self.errors[0])
        message = [lines[start]]
        for line in lines[start + 1 :]:
            if not line.startswith("  "):
                break
            message.append(line)
        return "\n".join(message)


class _Cli:
    """`trainflow ARGS` in a fresh process, from `tmp_path`, with a home of its own."""

    def __init__(self, prefect_home: Path, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        env = {key: value for key, value in os.environ.items() if key not in SESSION_ONLY}
        env.update(
            PYTHONPATH=str(REPO_ROOT),
            PREFECT_HOME=str(prefect_home),
            TRAINFLOW_HOME=str(self.home),
        )
        self.env = env

    def __call__(self, *args: str, **env: str) -> Outcome:
        report = self.workdir / "tensorflow-imported.txt"
        report.unlink(missing_ok=True)
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, str(report), *args],
            cwd=self.workdir,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=CLI_SECONDS,
            check=False,
        )
        return Outcome(result.returncode, result.stdout, report.read_text() == "True", self.home)


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefect")


@pytest.fixture
def cli(prefect_home: Path, tmp_path: Path) -> _Cli:
    return _Cli(prefect_home, tmp_path)


def assert_failed_cleanly(outcome: Outcome, *named: str) -> None:
    """Exit 1; the message once, naming what the user gave; no traceback, banner or TF."""
    assert outcome.code == 1, outcome.output
    assert "Traceback" not in outcome.output, outcome.output
    assert len(outcome.errors) == 1, outcome.output
    for name in named:
        assert name in outcome.error, outcome.error
    assert f"{outcome.home}{os.sep}raw" not in outcome.error  # never the internal copy
    assert not any(banner in outcome.output for banner in BANNER)
    assert not outcome.tensorflow, "TensorFlow started before the input was checked"


def assert_nothing_written(home: Path) -> None:
    """No table, split, model or registry: at most the raw copy of what was given."""
    for stage in ("data", "splits", "models", "reports"):
        assert not list((home / stage).rglob("*.*")), stage
    assert not (home / "mlflow.db").exists()


def workbook_with_text_cell(path: Path) -> Path:
    write_energy_workbook(path, n_rows=60)
    book = openpyxl.load_workbook(path)
    book.active["C5"] = "abc"  # X3, the wall area, on data row 5
    book.save(path)
    return path


@pytest.mark.slow
def test_a_text_cell_in_a_workbook_is_named_by_file_sheet_column_and_row(
    cli: _Cli,
) -> None:
    workbook_with_text_cell(cli.workdir / "book.xlsx")

    outcome = cli("run", "energy", "--source", "book.xlsx", "--epochs", "2")

    assert_failed_cleanly(outcome, "'book.xlsx', sheet 'Φύλλο1'", "column 'X3'", "row 5 = 'abc'")
    assert_nothing_written(outcome.home)


def test_a_csv_missing_a_column_is_named(cli: _Cli) -> None:
    (cli.workdir / "buildings.csv").write_text("X1,X2,X3,X4,X5,X6,X7\n0.98,514.5,294,110,7,2,0\n")

    outcome = cli("predict", "energy", "buildings.csv")

    assert_failed_cleanly(outcome, "'buildings.csv'", "missing X8")


def test_bytes_that_are_not_parquet_are_described_not_parsed(cli: _Cli) -> None:
    (cli.workdir / "buildings.parquet").write_text("X1,X2\n1,2\n")

    outcome = cli("predict", "energy", "buildings.parquet")

    assert_failed_cleanly(outcome, "'buildings.parquet' is not a Parquet file", "'X1,X2'")


@pytest.mark.slow
def test_a_missing_source_file_is_named(cli: _Cli) -> None:
    outcome = cli("run", "energy", "--source", "nowhere.xlsx", "--epochs", "2")

    assert_failed_cleanly(outcome, "source='nowhere.xlsx'")
    assert_nothing_written(outcome.home)


@pytest.mark.slow
def test_an_unreachable_source_url_is_named(cli: _Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}/buildings.xlsx"

    outcome = cli("run", "energy", "--source", url, "--epochs", "2")

    assert_failed_cleanly(outcome, url, "connection refused")
    assert_nothing_written(outcome.home)


@pytest.mark.slow
def test_a_mirror_serving_other_bytes_is_named(cli: _Cli) -> None:
    mirror = cli.workdir / "mirror"
    (mirror / WORKBOOK.mirror_path).parent.mkdir(parents=True)
    (mirror / WORKBOOK.mirror_path).write_bytes(b"not the workbook")
    # The published URL fails at once and offline: every request goes to a closed proxy port.
    proxy = f"http://127.0.0.1:{free_port()}"

    outcome = cli(
        "run", "energy", "--epochs", "2",
        TRAINFLOW_MIRROR=str(mirror), HTTPS_PROXY=proxy, HTTP_PROXY=proxy,
        NO_PROXY="127.0.0.1,localhost",  # Prefect's own API stays reachable
    )  # fmt: skip

    assert_failed_cleanly(outcome, f"{mirror / WORKBOOK.mirror_path}: checksum mismatch")
    assert_nothing_written(outcome.home)
    assert not (outcome.home / "raw" / str(WORKBOOK.sha256)).exists()


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--epochs", "0", "Invalid option --epochs 0: input should be greater than 0"),
        ("--seed", "-1", "Invalid option --seed -1: input should be greater than or equal to 0"),
    ],
)
def test_an_option_out_of_range_is_one_line(cli: _Cli, option: str, value: str, said: str) -> None:
    outcome = cli("run", "energy", option, value)

    assert_failed_cleanly(outcome, said)
    assert outcome.error == f"trainflow: error: {said}"
    assert_nothing_written(outcome.home)


@pytest.mark.slow
def test_a_deployment_reads_local_files_only_under_the_source_roots(cli: _Cli) -> None:
    """Prefect's own override makes the CLI's run look like a deployment's run."""
    (cli.workdir / "inside").mkdir()
    workbook_with_text_cell(cli.workdir / "inside" / "book.xlsx")
    from_api = {"PREFECT__RUNTIME__DEPLOYMENT__ID": "00000000-0000-4000-8000-000000000001"}

    refused = cli("run", "energy", "--source", "inside/book.xlsx", "--epochs", "2", **from_api)
    assert_failed_cleanly(refused, "TRAINFLOW_SOURCE_ROOTS is unset", "source='inside/book.xlsx'")
    assert not list((refused.home / "raw").rglob("book.xlsx"))  # not even copied

    roots = {"TRAINFLOW_SOURCE_ROOTS": f"/nonexistent{os.pathsep}{cli.workdir / 'inside'}"}
    admitted = cli("run", "energy", "--source", "inside/book.xlsx", **from_api, **roots)
    assert_failed_cleanly(admitted, "'inside/book.xlsx', sheet", "row 5 = 'abc'")


@pytest.mark.slow
def test_a_registry_that_is_down_fails_before_training(cli: _Cli) -> None:
    write_energy_workbook(cli.workdir / "buildings.xlsx", n_rows=60)
    registry = f"http://127.0.0.1:{free_port()}"

    outcome = cli(
        "run", "energy", "--source", "buildings.xlsx", "--epochs", "2",
        MLFLOW_TRACKING_URI=registry,
    )  # fmt: skip

    assert_failed_cleanly(outcome, f"Could not reach the MLflow registry at {registry}")
    assert not (outcome.home / "models").exists()


@pytest.mark.slow
def test_a_registry_that_answers_503_fails_the_run_and_registers_nothing(cli: _Cli) -> None:
    write_energy_workbook(cli.workdir / "buildings.xlsx", n_rows=60)
    with unavailable_server() as registry:
        outcome = cli(
            "run", "energy", "--source", "buildings.xlsx", "--epochs", "2",
            MLFLOW_TRACKING_URI=registry, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        )  # fmt: skip

    assert_failed_cleanly(outcome, f"in the registry at {registry}", "503")
    assert not (outcome.home / "models").exists()


@pytest.mark.slow
def test_a_failed_run_leaves_the_champion_where_it_was(cli: _Cli) -> None:
    write_energy_workbook(cli.workdir / "buildings.xlsx", n_rows=320)
    first = cli("run", "energy", "--source", "buildings.xlsx", "--epochs", GOOD_EPOCHS)
    assert first.code == 0, first.output
    assert "energy-efficiency v1 (new version, champion)" in first.output
    assert not any(banner in first.output for banner in BANNER)  # not in good runs either
    workbook_with_text_cell(cli.workdir / "book.xlsx")

    failed = cli("run", "energy", "--source", "book.xlsx", "--epochs", GOOD_EPOCHS)

    assert_failed_cleanly(failed, "'book.xlsx', sheet")
    uri = f"sqlite:///{cli.home / 'mlflow.db'}"
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(registry.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version) == "1"
    versions = registry.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [str(version.version) for version in versions] == ["1"]


@pytest.mark.slow
def test_an_unexpected_error_is_one_line_and_verbose_shows_its_traceback(cli: _Cli) -> None:
    write_energy_workbook(cli.workdir / "buildings.xlsx", n_rows=60)
    broken = {"TRAINFLOW_FAULT": "error:split"}  # raises as a bug would (lib.core.faults)
    args = ("run", "energy", "--source", "buildings.xlsx", "--epochs", "2")

    plain = cli(*args, **broken)
    verbose = cli("-v", *args, **broken)

    for outcome in (plain, verbose):
        assert outcome.code == 1 and len(outcome.errors) == 1, outcome.output
        assert "fault injected at split" in outcome.error
    # Prefect's run log keeps an unexpected error's traceback; -v adds the CLI's own, which
    # ends right above the CLI's line.
    assert plain.output.count("Traceback") >= 1  # the task's run log (and the flow's)
    assert verbose.output.count("Traceback") == plain.output.count("Traceback") + 1
    lines = verbose.output.splitlines()
    assert lines[lines.index(verbose.errors[0]) - 1].startswith("lib.core.faults.InjectedFault:")


@pytest.mark.slow
def test_verbose_shows_the_traceback_of_an_expected_failure_too(cli: _Cli) -> None:
    workbook_with_text_cell(cli.workdir / "book.xlsx")

    outcome = cli("run", "energy", "--source", "book.xlsx", "--epochs", "2", "-v")

    assert outcome.code == 1 and len(outcome.errors) == 1, outcome.output
    assert "Traceback" in outcome.output and "WorkbookError" in outcome.output


def test_a_source_for_the_siamese_pipeline_is_refused_not_ignored(cli: _Cli) -> None:
    outcome = cli("run", "siamese", "--source", "buildings.xlsx")

    assert_failed_cleanly(outcome, "--source is for `run energy`")
    assert not outcome.home.exists()


def test_a_workbook_numbering_a_row_past_excels_last_is_refused_in_one_line(cli: _Cli) -> None:
    rows = "".join(
        f'<row r="{number}"><c r="A{number}"><v>{number}</v></c></row>'
        for number in (2, 3, 1_048_577)
    )
    craft_xlsx(cli.workdir / "huge.xlsx", header_row(*FEATURES) + rows)

    outcome = cli("predict", "energy", "huge.xlsx")

    assert_failed_cleanly(
        outcome, "'huge.xlsx', sheet 'S1'", "up to 1,048,576 (Excel's last row)", "1,048,577"
    )
