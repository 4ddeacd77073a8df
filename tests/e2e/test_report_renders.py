"""The energy report's plots show as images in both Prefect UIs, checked in headless Chromium.

Opt-in: needs the `ui-check` extra (Playwright) and a system Chromium at /usr/bin/chromium, and
is skipped with the reason otherwise. A real energy run against a real server with its UI
publishes the report; tools/check_report_renders.py then runs as a person would run it, once
on that report and once on a report whose image cannot decode, so the check is seen to fail.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.servers import Server, prefect_server
from tests.fixtures.energy import write_energy_workbook

CHROMIUM = Path("/usr/bin/chromium")
CHECK = REPO_ROOT / "tools" / "check_report_renders.py"
FLOW_SECONDS = 600
CHECK_SECONDS = 300
EPOCHS = 5  # the plots are the point, not the model
PLOTS = ("predicted-vs-actual", "learning-curves")  # the alt texts: the plots' file stems
# Valid markdown and a data: URI that both UIs keep, but no decodable PNG behind it.
BROKEN = "# broken\n\n![broken](data:image/png;base64,AAAA)"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="Playwright is not installed: pip install -e '.[ui-check]'",
    ),
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium"
    ),
]


def run_check(server: Server, screenshots: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), "--api-url", server.api_url, "--screenshot-dir",
         str(screenshots), *args],
        cwd=REPO_ROOT, env=server.env, capture_output=True, text=True, timeout=CHECK_SECONDS,
    )  # fmt: skip


def test_report_plots_render_in_both_uis(tmp_path: Path) -> None:
    workbook = write_energy_workbook(tmp_path / "buildings.xlsx", n_rows=320)
    with prefect_server(tmp_path, ui=True) as server:
        run = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", "energy", "--source", str(workbook),
             "--epochs", str(EPOCHS)],
            cwd=REPO_ROOT, env=server.env, capture_output=True, text=True, timeout=FLOW_SECONDS,
        )  # fmt: skip
        assert run.returncode == 0, f"energy run:\n{run.stdout}\n{run.stderr}"

        good = run_check(server, tmp_path / "good")
        assert good.returncode == 0, f"{good.stdout}\n{good.stderr}"
        for version in ("v1", "v2"):
            (line,) = [line for line in good.stdout.splitlines() if line.startswith(version)]
            assert all(f"'{plot}': " in line for plot in PLOTS), line
            shot = tmp_path / "good" / f"report-render-{version}.png"
            assert shot.read_bytes().startswith(b"\x89PNG"), shot

        httpx.post(
            f"{server.api_url}/artifacts/",
            json={"key": "broken-report", "type": "markdown", "data": BROKEN},
            timeout=10,
        ).raise_for_status()
        bad = run_check(server, tmp_path / "bad", "--key", "broken-report", "--timeout", "20")
        assert bad.returncode == 1, f"{bad.stdout}\n{bad.stderr}"
        assert bad.stderr.count("'broken': not rendered") == 2, bad.stderr  # in each UI
