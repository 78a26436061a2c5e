# Image-caption pairs at 32 px for DaVinci, from annotation files: a JSON list (.json) or JSON
# lines (.jsonl) of {"image": path relative to data_root, "caption": a text or a list of texts}.
# Default places are those of docs/custom_data.md; a config points elsewhere by overriding
# `data_root` / `ann_file` inside each dataloader's `dataset` (the types stay the same, so
# mmengine merges the keys and no `_delete_` is needed).
image_size = 32
data_root = 'data/custom'
# The short side resized (bicubic), the centre square kept; no flips (captions say left/right).
load_and_crop = [
    # A file that is missing or does not decode is skipped and counted as a bad row.
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(
        type='ResizeEdge', scale=image_size, edge='short', backend='pillow', interpolation='bicubic'
    ),
    dict(type='CenterCrop', crop_size=image_size),
]
train_pipeline = [
    *load_and_crop,
    dict(type='PreCaption', max_words=30),  # the original's cleaning; a list gives one per access
    dict(type='TokenizeText', keys=['caption']),  # WordPiece ids, once, in the data workers
    dict(type='PackDaVinciInputs'),
]
test_pipeline = [
    *load_and_crop,
    dict(type='KeepCaptionReferences'),  # every caption of the row, for the caption scores
    dict(type='PreCaption', max_words=30),  # the caption that is painted (one of a list)
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs', algorithm_keys=['references']),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=0,  # images are decoded in the training process (raise on a many-core machine)
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ImageTextAnnotations',
        data_root=data_root,
        ann_file=data_root + '/captions_train.json',
        pipeline=train_pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_dataloader = dict(
    batch_size=50,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ImageTextAnnotations',
        data_root=data_root,
        ann_file=data_root + '/captions_test.json',
        pipeline=test_pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
# Caption scores (BLEU, METEOR, ROUGE-L, CIDEr) of the written captions; the model's own
# likelihood of its paintings (with WritePaintHead(painting_likelihood=True)); a CLIP score
# with clip_scorer=dict(type='CLIPScorer', weights=..., merges=...) (davinci-zoo-clip).
test_evaluator = dict(type='WritePaintMetric')
test_cfg = dict(type='TestLoop')
