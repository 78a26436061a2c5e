"""Shared test set-up: offline hub, time budgets for slow checks, helpers to run the tools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / 'tests' / 'fixtures'
sys.path.insert(0, str(FIXTURES))  # test-only components (toy_zoo) for in-process configs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Stop a ``@pytest.mark.slow(budget_s=N)`` test that runs past its budget."""
    marker = item.get_closest_marker('slow')
    budget = marker.kwargs.get('budget_s') if marker else None
    if not budget:
        yield
        return

    def over_budget(signum, frame):
        raise TimeoutError(f'{item.nodeid} ran past its budget of {budget} s')

    previous = signal.signal(signal.SIGALRM, over_budget)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for running tools/ in a child process (test components importable)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(FIXTURES), str(REPO), env.get('PYTHONPATH', '')])
    env.update(extra)
    return env


def run_tool(
    *args: str, timeout: float = 300, python: str = sys.executable, cwd=None, **env: str
) -> subprocess.CompletedProcess:
    """Run ``python tools/<args>`` and return the completed process (text output)."""
    return subprocess.run(
        [python, *args],
        cwd=cwd or REPO,
        env=tool_env(**env),
        text=True,
        capture_output=True,
        timeout=timeout,
    )
