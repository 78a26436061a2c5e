# The published DALL-E dVAE layout: 256 px -> 32x32 codes from 8192 entries (97.6M parameters).
# Convert OpenAI's weights with tools/model_converters/openai_dvae.py, or train on an image
# folder (needs a GPU in practice).
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/image_folder_256.py']

codebook_size = 8192
model = dict(
    type='ImageTokenizerTrainer',
    image_tokenizer=dict(type='DVAE', codebook_size=codebook_size),
    reconstruction_losses=[dict(type='PixelL1Loss')],
)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=150_000)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10_000))
