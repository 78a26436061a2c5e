# The published DALL-E dVAE layout: 256 px -> 32x32 codes from 8192 entries (97.6M parameters).
# Convert OpenAI's weights with tools/model_converters/openai_dvae.py, or train on an image
# folder (needs a GPU in practice).
_base_ = ['../_base_/default_runtime.py']

image_size = 256
codebook_size = 8192
data_root = 'data/imagenet/train'  # see docs/data.md
model = dict(
    type='ImageTokenizerTrainer',
    image_tokenizer=dict(type='DVAE', codebook_size=codebook_size),
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
train_cfg = dict(type='IterBasedTrainLoop', max_iters=150_000)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10_000))
