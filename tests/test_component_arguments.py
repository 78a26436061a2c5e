"""A model, head, objective, preprocessor, dataset or transform config the component cannot be
built with raises ComponentArgumentError, which the tools print as one line (exit 2) instead of
a traceback."""

import json

import pytest
from conftest import tiny_davinci_config

from davinci_zoo.cli import run_tool
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import DATASETS, HEADS, IMAGE_TOKENIZERS, MODELS, OBJECTIVES, TRANSFORMS

BAD_HEADS = [
    (
        dict(type='CaptionHead', label_smoothing=1.0),
        r'label_smoothing must lie in \[0, 1\), got 1.0',
    ),
    (dict(type='CaptionHead', generation=dict(num_beams=0)), 'CaptionHead generation: num_beams'),
    (dict(type='CaptionHead', generation=dict(beams=2)), "CaptionHead generation: .*'beams'"),
    (dict(type='TextToImageHead', num_samples=0), 'num_samples must be at least 1, got 0'),
    (
        dict(type='TextToImageHead', generation=dict(top_p=0.0)),
        'TextToImageHead generation: .*top_p',
    ),
    (
        dict(type='WritePaintHead', caption_generation=dict(temperature=0)),
        'WritePaintHead caption_generation: temperature',
    ),
    (
        dict(type='WritePaintHead', painting_generation=dict(num_beams=2, do_sample=True)),
        'WritePaintHead painting_generation: beam search',
    ),
    (dict(type='VQAHead', top_k=0), 'top_k and chunk_size must be at least 1, got 0, 1024'),
    (dict(type='VQAHead', chunk_size=0), 'top_k and chunk_size must be at least 1, got 128, 0'),
    (dict(type='VQAHead', max_answer_tokens=2), 'max_answer_tokens must be >= 3'),
    (dict(type='VQAHead', label_smoothing=-0.1), r'label_smoothing must lie in \[0, 1\)'),
    (dict(type='VQAHead', answer_list=['yes', 'no', 'yes']), 'holds an answer twice'),
    (dict(type='VQAHead', answer_list=['yes', '']), 'non-empty JSON list of non-empty strings'),
    (dict(type='ImageClassificationHead', num_classes=1), 'num_classes must be at least 2, got 1'),
    (
        dict(type='ImageClassificationHead', num_classes=3, label_smoothing=2),
        r'label_smoothing must lie in \[0, 1\), got 2',
    ),
    (
        dict(type='SequenceClassificationHead', num_classes=2, label_smoothing=1.0),
        r'label_smoothing must lie in \[0, 1\)',
    ),
]
BAD_OBJECTIVES = [
    (dict(type='MaskedLM', mask_prob=0.0), r'mask_prob must lie in \(0, 1\], got 0.0'),
    (dict(type='MaskedLM', max_tokens=2), r'max_tokens must be >= 3 \(\[CLS\], a token, \[SEP\]\)'),
    (dict(type='PrefixLM', logits='image'), "logits must be 'text' or 'all', got 'image'"),
    (dict(type='PrefixLM', empty_prefix_prob=1.5), r'empty_prefix_prob must lie in \[0, 1\]'),
    (dict(type='PrefixImage', input_noise=1.0), r'input_noise must lie in \[0, 1\), got 1.0'),
    (dict(type='PrefixImage', caption_dropout=-0.1), r'caption_dropout must lie in \[0, 1\)'),
    (dict(type='PrefixImage', mode='greedy'), "mode must be 'dynamic' or 'static', got 'greedy'"),
    (dict(type='PrefixImage', logits='text'), "logits must be 'image' or 'all', got 'text'"),
    (dict(type='ImageTextContrastive', temperature=0.001), 'temperature must be > 0'),
    (dict(type='ImageTextContrastive', name='loss_itc'), "name 'loss_itc' must not contain 'loss'"),
    (dict(type='MaskedImageModeling', mask_ratio=1.0), r'mask_ratio must lie in \(0, 1\)'),
    (dict(type='MaskedImageModeling', min_block=0), 'min_block must be >= 1 patch, got 0'),
]
TOKENIZER = tiny_davinci_config()['image_tokenizer']
BAD_TOKENIZERS = [
    (dict(TOKENIZER, ch_mult=()), 'ch_mult needs at least one level'),
    (dict(TOKENIZER, norm_groups=6), r'VQGAN channel counts \[16, 32\] .* norm_groups=6'),
    (dict(TOKENIZER, restart_interval=-1), 'restart_interval must be >= 0, got -1'),
    (dict(TOKENIZER, cell_local_encoder=True, attn_resolutions=(8,)), 'cell-local encoder'),
    (dict(TOKENIZER, codebook_update='kmeans'), "codebook_update must be one of .* 'kmeans'"),
]


BAD_DATASETS = [
    (dict(type='STL10', data_root='x', split='val'), r"STL10: split must be one of .*'val'"),
    (dict(type='Country211', data_root='x', split='dev'), 'Country211: split must be one of'),
    (dict(type='CIFARLayout', data_root='x', split='val'), 'CIFARLayout: split must be one of'),
    (dict(type='CIFARLayout', data_root='x', label_key='names'), 'label_key must be one of'),
    (dict(type='GLUEDataset', task='SST-5'), "unknown GLUE task 'SST-5'"),
    (
        dict(type='CocoKarpathyCaptions', ann_file='x.json', items='pairs'),
        'items must be one of',
    ),
    (
        dict(type='CocoKarpathyCaptions', ann_file='x.json', items='captions', caption_seed=0),
        "caption_seed picks one caption per image: use items='images'",
    ),
    (dict(type='ProceduralScenes', num_scenes=4, held_out='sometimes'), 'held_out must be one of'),
    (
        dict(type='ProceduralScenes', num_scenes=4, image_size=16),
        'image_size must be at least 32 pixels',
    ),
    (dict(type='MultiSourceDataset', sources={}, mode='round'), "mode must be 'fixed' or"),
    (
        dict(type='MultiSourceDataset', sources=dict(a=[]), counts=dict(b=1)),
        'fixed mode needs counts for some of the sources',
    ),
    (
        dict(type='MultiSourceDataset', sources=dict(a=[]), counts=dict(a=0)),
        'must be non-negative with a positive sum',
    ),
    (dict(type='SubsetDataset', dataset=[1, 2], size=1.5), r'a fractional size must lie in'),
    (dict(type='SubsetDataset', dataset=[1, 2], size=0), 'size must be at least 1, got 0'),
    (dict(type='SubsetDataset', dataset=[1, 2], size=3), 'size 3 is more than the 2 items'),
]
BAD_TRANSFORMS = [
    (dict(type='TokenizeTextPair', keys=['text']), 'TokenizeTextPair takes two keys'),
    (dict(type='TokenizeTextPair', max_tokens=2), 'max_tokens=2 leaves no room'),
    (dict(type='ToBGR', source='bgr'), 'ToBGR: source must be one of'),
]


BAD_CONFIGS = [
    (registry, config, message)
    for registry, table in (
        (HEADS, BAD_HEADS),
        (OBJECTIVES, BAD_OBJECTIVES),
        (IMAGE_TOKENIZERS, BAD_TOKENIZERS),
        (DATASETS, BAD_DATASETS),
        (TRANSFORMS, BAD_TRANSFORMS),
    )
    for config, message in table
]


@pytest.mark.parametrize(
    ('registry', 'config', 'message'),
    BAD_CONFIGS,
    ids=[f'{registry.name}-{str(config)[:60]}' for registry, config, _ in BAD_CONFIGS],
)
def test_a_config_out_of_range_is_a_component_argument_error(registry, config, message):
    """A head, objective, image tokenizer, dataset or transform built from its registry."""
    with pytest.raises(ComponentArgumentError, match=message):
        registry.build(config)


def test_an_answer_list_file_that_is_no_json_list_is_a_component_argument_error(tmp_path):
    broken = tmp_path / 'answer_list.json'
    broken.write_text('{"yes": 1')
    with pytest.raises(ComponentArgumentError, match=f'answer list {broken} is not valid JSON'):
        HEADS.build(dict(type='VQAHead', answer_list=str(broken)))
    broken.write_text(json.dumps({'answers': ['yes']}))  # valid JSON, not a list
    with pytest.raises(ComponentArgumentError, match='non-empty JSON list'):
        HEADS.build(dict(type='VQAHead', answer_list=str(broken)))


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        (
            dict(image_embedding_init='uniform'),
            "image_embedding_init must be 'normal' or 'codebook'",
        ),
        (dict(image_tokenizer=None), 'needs image codes .* but the model has no image_tokenizer'),
        (dict(visual_vocab_size=32), r'visual_vocab_size=32, image_code_grid=\(8, 8\) disagree'),
        (
            dict(objectives=[], head=None, image_tokenizer=None, image_code_grid=None),
            'needs visual_vocab_size and image_code_grid',
        ),
        (
            dict(
                data_preprocessor=dict(
                    type='DaVinciDataPreprocessor',
                    batch_augments=dict(augments=[dict(type='Mixup', alpha=1.0)]),
                )
            ),
            'batch_augments need num_classes',
        ),
        (dict(num_heads=5), 'hidden_size 32 is not divisible by 5 heads'),
        (
            dict(image_size=36, image_code_grid=None),
            'image_size 36 is not a multiple of the stride 8',
        ),
        (
            dict(
                objectives=[dict(type='MaskedImageModeling')],
                image_tokenizer=dict(TOKENIZER, ch_mult=(1, 2, 2, 2, 2)),
                image_code_grid=None,
            ),
            r'MaskedImageModeling needs image patches \(8 px, the embedder stride\) made of whole '
            r'code cells \(16 px',
        ),
    ],
    ids=[
        'embedding-init',
        'no-tokenizer',
        'vocab-disagrees',
        'no-vocab',
        'mixup-without-classes',
        'heads-split-width',
        'stride-splits-image',
        'mim-patch-of-cells',
    ],
)
def test_a_model_config_that_contradicts_itself_is_a_component_argument_error(overrides, message):
    with pytest.raises(ComponentArgumentError, match=message):
        MODELS.build(tiny_davinci_config(**overrides))


def test_a_tokenizer_trainer_without_losses_is_a_component_argument_error():
    tokenizer = tiny_davinci_config()['image_tokenizer']
    trainer = dict(type='ImageTokenizerTrainer', image_tokenizer=tokenizer)
    with pytest.raises(ComponentArgumentError, match='needs at least one loss'):
        MODELS.build(dict(trainer, reconstruction_losses=[]))


def test_the_tools_print_a_component_argument_error_as_one_line(capsys):
    def main(argv):
        HEADS.build(dict(type='VQAHead', top_k=0))

    with pytest.raises(SystemExit) as exit_info:
        run_tool(main, [])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'error: top_k and chunk_size must be at least 1, got 0, 1024\n'
    )
