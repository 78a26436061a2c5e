# The published taming-transformers layout DaVinci uses: 256 px -> 16x16 codes, 1024 entries.
# Trains on any folder of images (e.g. ImageNet train); convert the published weights instead
# with tools/model_converters/taming_vqgan.py. Needs a GPU in practice.
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/image_folder_256.py']

codebook_size = 1024
model = dict(
    type='ImageTokenizerTrainer',
    image_tokenizer=dict(type='VQGAN', codebook_size=codebook_size, restart_interval=1000),
    reconstruction_losses=[dict(type='PixelL1Loss')],
)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=500_000)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=4.5e-6, betas=(0.5, 0.9)))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10_000))
