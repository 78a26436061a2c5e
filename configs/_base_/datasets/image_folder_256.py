# Every image below a folder (e.g. ImageNet train), for training image tokenizers at 256 px:
# the short side resized, the centre square kept; no captions.
image_size = 256
data_root = 'data/imagenet/train'  # see docs/data.md
train_pipeline = [
    # A file that is missing or does not decode is skipped and counted.
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(
        type='ResizeEdge', scale=image_size, edge='short', backend='pillow', interpolation='bicubic'
    ),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='PackDaVinciInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderImages', data_root=data_root, pipeline=train_pipeline),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
