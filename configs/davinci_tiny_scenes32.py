# A tiny DaVinci that learns to write and paint procedural scenes on a CPU (the quick start).
#   python tools/quickstart.py            # trains the tokenizer, then this, then scores it
# Run alone it needs the tokenizer weights:
#   python tools/train.py configs/davinci_tiny_scenes32.py --cfg-options \
#       model.image_tokenizer.checkpoint=work_dirs/quickstart/tokenizer/vqgan.safetensors
_base_ = [
    '_base_/default_runtime.py',
    '_base_/datasets/scenes32_pairs.py',
    '_base_/models/vqgan_f4_scenes32.py',
]

model = dict(
    type='DaVinci',
    image_size=32,
    hidden_size=256,
    num_heads=4,
    intermediate_size=1024,
    encoder_layers=3,
    decoder_layers=3,
    dropout=0.0,
    max_text_positions=40,
    image_embedder=dict(
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1, 1),
        base_planes=16,
        stem_channels=32,
        stem_pool=False,
        stem_stride=2,
    ),
    image_tokenizer={{_base_.image_tokenizer}},
    # Ours, off in the base configs (docs/model.md). Measured together with the 20x learning
    # rate of the bias tables (below), batch 8 x 800 steps: caption accuracy 0.92 / 0.73
    # (one / two objects); without any of them 0.79 / 0.21.
    image_grid_embeddings=True,
    painting_relative_bias=True,
    image_embedding_init='codebook',
    # Measured with the cell-local scene tokenizer: with static PrefixImage (plain
    # text-to-image only) the shared decoder learnt to paint from text and the captions fell
    # back to a text prior (450 steps: caption accuracy 0.07 one-object); with dynamic prefix
    # image modelling, where the encoder also reads the top rows of the image while painting,
    # 600 steps gave 0.84 one-object / 0.36 two-object. Half of the captions are written
    # whole (k = 0), which is what captioning asks.
    objectives=[
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.5),
        # input_noise (ours): 70% of the painter's input codes are replaced by random ones,
        # so every cell must read the caption, not only the first cell of an object.
        # Measured, 640 steps on 2-px-grid scenes (paint accuracy one / two objects, greedy):
        # no noise 0.02 / 0.0, 0.3: 0.22 / 0.02, 0.5: 0.26 / 0.08, 0.7: 0.32 / 0.05.
        dict(type='PrefixImage', weight=1.0, mode='dynamic', input_noise=0.7),
    ],
)
# At this size a step costs nearly the same at batch 8 as at 16 (0.45-0.55 s vs 0.65-0.7 s on
# 2 cores: optimizer and per-op overheads dominate), so batch 8 buys many more updates in the
# quick start's minutes. 640 steps (0.5-0.9 s each in the runner, by the host's load) keep the
# whole quick start near 15 minutes: 17.0 measured on a host losing much of its CPU time to
# other guests, captions 0.87 / 0.10 and paintings 0.21 / 0.06 (one / two objects; with the
# tokenizer trained on every colour/shape pair: 0.994 analyser accuracy).
train_dataloader = dict(batch_size=8)

max_iters = 640
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(
    constructor='GroupedOptimWrapperConstructor',  # one param group per setting, not per tensor
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.98), weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            # Adam moves a parameter by about lr per step, so zero-initialised bias tables
            # could not get past ~0.5 in this short run; 20x lets them shape attention.
            'relative_bias_table': dict(decay_mult=0.0, lr_mult=20.0),
        },
    ),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=2e-5),
]
randomness = dict(seed=0, diff_rank_seed=True)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
custom_hooks = [
    dict(type='RNGStateHook'),
    dict(type='ProvenanceHook'),
    dict(type='WritePaintSamplesHook'),
]
