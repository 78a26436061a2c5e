"""The README's quick start in its --smoke form (CI runs this): it trains, writes and paints."""

import json

import pytest
from conftest import run_tool

pytestmark = [pytest.mark.slow(budget_s=420), pytest.mark.subprocess]


def test_quickstart_smoke(tmp_path):
    result = run_tool('tools/quickstart.py', '--smoke', '--work-dir', str(tmp_path), timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / 'summary.json').read_text())
    scores = summary['davinci']
    print(json.dumps(summary, indent=2))
    assert scores['scenes/caption_accuracy_all'] >= 0.5
    assert scores['scenes/paint_accuracy_all'] >= 0.2
    assert summary['tokenizer']['reconstruction/analyser_accuracy_original'] == 1.0
    runs = list((tmp_path / 'davinci').glob('*/captions.tsv')) + list(
        (tmp_path / 'davinci').glob('captions.tsv')
    )
    assert runs and len(runs[0].read_text().splitlines()) == 1 + 200
    assert list((tmp_path / 'davinci').rglob('paintings.png'))
    assert (tmp_path / 'tokenizer' / 'vqgan.safetensors').is_file()
    assert 'quick start finished in' in result.stdout
