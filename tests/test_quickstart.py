"""The README's quick start in its --smoke form (CI runs this): the pipeline runs, learns, and
reaches the smoke run's accuracy aim.

The smoke run (6.1 minutes on 2 cores here) trains a tokenizer that reads back most scenes and
a DaVinci just long enough to write most one-object scenes (320 steps): the aim is caption
accuracy >= 0.5 and paint accuracy >= 0.2 over the seen held-out scenes (measured 0.56 / 0.27;
README). The full quick start's accuracies are measured by running it (README).
"""

import json

import pytest
from conftest import run_tool

pytestmark = [pytest.mark.slow(budget_s=600), pytest.mark.subprocess]


def test_quickstart_smoke(tmp_path):
    result = run_tool('tools/quickstart.py', '--smoke', '--work-dir', str(tmp_path), timeout=580)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / 'summary.json').read_text())
    scores = summary['davinci']
    print(json.dumps(summary, indent=2))
    for key in (
        'caption_accuracy_one_object',
        'caption_accuracy_two_objects',
        'paint_accuracy_one_object',
        'paint_accuracy_two_objects',
    ):
        assert 0.0 <= scores[f'scenes/{key}'] <= 1.0
    assert scores['scenes/count_all'] + scores.get('scenes/unseen_count_all', 0) == 100
    assert summary['tokenizer']['reconstruction/analyser_accuracy_original'] == 1.0
    # an all-black reconstruction of these scenes scores 14.8 dB
    assert summary['tokenizer']['reconstruction/psnr'] > 18
    # 1100 steps measured 0.74 (2 threads); 1000 steps 0.66; 300 steps of batch 64 read back 0.08
    assert summary['tokenizer']['reconstruction/analyser_accuracy'] >= 0.3
    # the smoke run's aim (issue 4); measured 0.56 (one object 0.89) and 0.27 (0.43)
    assert scores['scenes/caption_accuracy_all'] >= 0.5
    assert scores['scenes/paint_accuracy_all'] >= 0.2
    # measured (first / last logged mean of 25 steps): 5.56 -> 0.11 and 5.19 -> 0.50
    losses = summary['davinci_training_losses']
    assert losses['loss_prefixlm']['last'] < min(1.5, losses['loss_prefixlm']['first'] / 4)
    assert losses['loss_prefiximage']['last'] < min(2.0, losses['loss_prefiximage']['first'] / 2)
    runs = list((tmp_path / 'davinci').glob('*/captions.tsv')) + list(
        (tmp_path / 'davinci').glob('captions.tsv')
    )
    assert runs and len(runs[0].read_text().splitlines()) == 1 + 100
    assert list((tmp_path / 'davinci').rglob('paintings.png'))
    assert (tmp_path / 'tokenizer' / 'vqgan.safetensors').is_file()
    assert 'quick start finished in' in result.stdout
