# A tiny DALL-E dVAE for the procedural scenes: 32 px -> 8x8 codes from 512 entries, trained
# with the gumbel-softmax relaxation (temperature annealed from 1 to 1/16) and a KL term.
#   python tools/train.py configs/tokenizers/dvae_f4_scenes32.py
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/scenes32_images.py']

codebook_size = 512
max_iters = 1500
model = dict(
    type='ImageTokenizerTrainer',
    image_tokenizer=dict(
        type='DVAE',
        codebook_size=codebook_size,
        n_hid=32,
        n_blk_per_group=1,
        group_count=3,
        n_init=64,
        temperature=dict(type='exponential', start=1.0, end=1 / 16, steps=max_iters),
        kl_weight=dict(type='linear', start=0.0, end=5e-4, steps=max_iters // 3),
    ),
    reconstruction_losses=[dict(type='PixelL1Loss'), dict(type='PixelMSELoss')],
)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='SceneReconstructionMetric', codebook_size=codebook_size)
test_evaluator = dict(type='SceneReconstructionMetric', codebook_size=codebook_size)

optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.99)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-4),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
custom_hooks = [dict(type='RNGStateHook'), dict(type='ReconstructionGridHook')]
