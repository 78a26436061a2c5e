# A tiny VQGAN for the procedural scenes: 32 px -> 8x8 codes from 1024 entries, ~0.5M
# parameters, cell-local encoder, EMA codebook with dead-code restarts. Measurements behind its
# settings: docs/experiments/quickstart.md.
#   python tools/train.py configs/tokenizers/vqgan_f4_scenes32.py
#   python tools/test.py configs/tokenizers/vqgan_f4_scenes32.py \
#       work_dirs/vqgan_f4_scenes32/iter_1400.pth
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/scenes32_images.py',
    '../_base_/models/vqgan_f4_scenes32.py',
]

codebook_size = 1024
train_dataloader = dict(batch_size=8)  # bound by updates, not images: small batches, many steps
model = dict(
    type='ImageTokenizerTrainer',
    image_tokenizer={{_base_.image_tokenizer}},
    reconstruction_losses=[dict(type='PixelL1Loss'), dict(type='PixelMSELoss')],
)

max_iters = 1400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='SceneReconstructionMetric', codebook_size=codebook_size)
test_evaluator = dict(type='SceneReconstructionMetric', codebook_size=codebook_size)

optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3, betas=(0.9, 0.99)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-4),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
custom_hooks = [dict(type='RNGStateHook'), dict(type='ReconstructionGridHook')]
