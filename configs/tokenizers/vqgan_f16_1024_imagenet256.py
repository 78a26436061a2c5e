# The published taming-transformers layout DaVinci uses: 256 px -> 16x16 codes, 1024 entries.
# Trains on any folder of images (e.g. ImageNet train); convert the published weights instead
# with tools/model_converters/taming_vqgan.py. Needs a GPU in practice.
_base_ = ['../_base_/default_runtime.py']

image_size = 256
codebook_size = 1024
data_root = 'data/imagenet/train'  # see docs/data.md
model = dict(
    type='ImageTokenizerTrainer',
    image_tokenizer=dict(type='VQGAN', codebook_size=codebook_size, restart_interval=1000),
    reconstruction_losses=[dict(type='PixelL1Loss')],
)
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
train_cfg = dict(type='IterBasedTrainLoop', max_iters=500_000)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=4.5e-6, betas=(0.5, 0.9)))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10_000))
