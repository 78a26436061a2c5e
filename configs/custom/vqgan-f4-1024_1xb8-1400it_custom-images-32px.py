# An image tokenizer for your own images (docs/custom_data.md): a small VQGAN, 32 px -> 8x8
# codes from 1024 entries, trained on every image below data/custom/images and scored on the
# images of data/custom/captions_test.json (PSNR, SSIM, codebook usage).
#   python tools/train.py configs/custom/vqgan-f4-1024_1xb8-1400it_custom-images-32px.py
#   python tools/export_tokenizer.py work_dirs/vqgan-f4-1024_1xb8-1400it_custom-images-32px \
#       checkpoints/custom_vqgan_f4_32.safetensors
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/image_folder_32.py',
    '../_base_/models/vqgan_f4_32.py',
]

# Where your data is: change these three paths (or give them with --cfg-options).
data_root = 'data/custom'  # the folder the annotation files' image paths start from
train_dataloader = dict(dataset=dict(data_root=data_root + '/images'))  # training images
val_dataloader = dict(  # held-out images, scored after training
    dataset=dict(data_root=data_root, ann_file=data_root + '/captions_test.json')
)
test_dataloader = dict(  # the same for tools/test.py
    dataset=dict(data_root=data_root, ann_file=data_root + '/captions_test.json')
)

model = dict(
    type='ImageTokenizerTrainer',  # trains model.image_tokenizer of _base_/models/vqgan_f4_32.py
    reconstruction_losses=[dict(type='PixelL1Loss'), dict(type='PixelMSELoss')],
)

max_iters = 1400  # steps of 8 images
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='ReconstructionMetric', codebook_size=1024)  # = codebook_size
test_evaluator = dict(type='ReconstructionMetric', codebook_size=1024)

optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3, betas=(0.9, 0.99)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),  # warm-up
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-4),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),  # a log line every 50 steps
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
# RNG states in checkpoints (exact resume); originals above reconstructions as a PNG.
custom_hooks = [dict(type='RNGStateHook'), dict(type='ReconstructionGridHook')]
