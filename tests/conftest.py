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


def tiny_davinci_config(codebook_size: int = 64, **overrides) -> dict:
    """A DaVinci config small enough for tests: 32 px, width 32, 1 + 1 layers, f4 VQGAN.

    ``codebook_size`` sizes the tokenizer; other keywords replace top-level model keys.
    """
    cfg = dict(
        type='DaVinci',
        image_size=32,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        encoder_layers=1,
        decoder_layers=1,
        dropout=0.0,
        max_text_positions=40,
        visual_vocab_size=codebook_size,
        image_code_grid=(8, 8),
        image_embedder=dict(
            type='ResNetImageEmbedder',
            stage_blocks=(1, 1, 1),
            base_planes=8,
            stem_channels=8,
            stem_pool=False,
            stem_stride=2,
        ),
        image_tokenizer=dict(
            type='VQGAN',
            ch=16,
            ch_mult=(1, 2, 2),
            num_res_blocks=1,
            attn_resolutions=(),
            z_channels=16,
            embed_dim=16,
            codebook_size=codebook_size,
            resolution=32,
            norm_groups=8,
        ),
        objectives=[dict(type='PrefixLM'), dict(type='PrefixImage')],
    )
    cfg.update(overrides)
    return cfg
