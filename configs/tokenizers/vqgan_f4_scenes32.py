# A tiny VQGAN for the procedural scenes: 32 px -> 8x8 codes from 1024 entries, ~0.5M
# parameters, cell-local encoder, EMA codebook with dead-code restarts.
# Its learning is bound by updates, not images: measured on the quick start's 2-px-grid scenes
# (500 held-out renders, analyser accuracy on reconstructions / PSNR; 1 thread each, two runs
# side by side): batch 8 x 1400 steps 1.0 / 36.7 dB (115 s); batch 8 x 1100 0.986 / 33.6;
# batch 8 x 1000 0.94 / 32.2 (89 s); batch 16 x 600 0.83; batch 64 x 300 0.08. In the quick
# start (2 threads, nothing else running) batch 8 x 1400 trained in 94 s to 0.96 / 32.6 dB; the
# earlier recipe, batch 16 x 1100, in 124 s to 1.0 / 34.1 dB.
# Earlier measured choices (with taming's encoder): 1024 codes beat 512. The cell-local
# encoder makes the background one code (DaVinci can learn to paint it).
#   python tools/train.py configs/tokenizers/vqgan_f4_scenes32.py
#   python tools/test.py configs/tokenizers/vqgan_f4_scenes32.py \
#       work_dirs/vqgan_f4_scenes32/iter_1400.pth
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/scenes32_images.py',
    '../_base_/models/vqgan_f4_scenes32.py',
]

codebook_size = 1024
train_dataloader = dict(batch_size=8)
model = dict(
    type='ImageTokenizerTrainer',
    image_tokenizer={{_base_.image_tokenizer}},
    reconstruction_losses=[dict(type='PixelL1Loss'), dict(type='PixelMSELoss')],
)

max_iters = 1400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='ReconstructionMetric', codebook_size=codebook_size)
test_evaluator = val_evaluator

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
