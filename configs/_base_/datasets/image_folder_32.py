# Images for training an image tokenizer at 32 px: every image below a folder (any depth,
# captions not needed); scored on the images of a held-out annotation file (its captions are
# not used). Default places are those of docs/custom_data.md; a config points elsewhere by
# overriding `data_root` / `ann_file` inside each dataloader's `dataset` (the types stay the
# same, so mmengine merges the keys and no `_delete_` is needed).
image_size = 32
data_root = 'data/custom'
# The short side resized (bicubic), the centre square kept: the same as DaVinci's pipelines.
load_and_crop = [
    # A file that is missing or does not decode is skipped and counted.
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(
        type='ResizeEdge', scale=image_size, edge='short', backend='pillow', interpolation='bicubic'
    ),
    dict(type='CenterCrop', crop_size=image_size),
]
train_pipeline = [
    *load_and_crop,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),  # twice the images, for free
    dict(type='PackDaVinciInputs', text_keys=[]),  # the image only
]
test_pipeline = [*load_and_crop, dict(type='PackDaVinciInputs', text_keys=[])]

train_dataloader = dict(
    batch_size=8,
    num_workers=0,  # images are decoded in the training process (raise on a many-core machine)
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ImageFolderImages', data_root=data_root + '/images', pipeline=train_pipeline
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
# Validation and test read the same file; each is written out in full (a base config's
# `test_dataloader = val_dataloader` is a copy made when the base is read: a child config that
# overrides val_dataloader would leave the test on the base's data).
val_dataloader = dict(
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
