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
    visual_vocab_size=1024,  # the scene tokenizer's codebook
    image_code_grid=(8, 8),  # its codes of a 32 px image (4 px cells)
    # BERT's 0.02 is tuned for width 768; at width 256 the wider start reads the image far
    # sooner. Batch 16 x 300 steps (1 thread, seed 0, empty_prefix_prob 0.5; caption / paint
    # accuracy over all seen held-out scenes): 0.02: 0.17 / 0.06 (seed 1: 0.35 / 0.0); 0.03:
    # 0.59 / 0.30 (seed 1: 0.50 / 0.22); 0.04: 0.54 / 0.39 (seed 1: 0.49 / 0.31); 0.05:
    # 0.49 / 0.41; 0.07: 0.31 / 0.0. 0.04 at 400 steps: 0.72 / 0.58.
    initializer_range=0.04,
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
    # Most captions are written whole (k = 0), which is what captioning asks: every token is
    # then a target. Batch 16 x 350 steps (1 thread, initializer_range 0.04; caption / paint
    # accuracy over all seen held-out scenes): 0.8: 0.70 / 0.50; 0.5: 0.61 / 0.53.
    objectives=[
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.8),
        # Static PrefixImage: plain text-to-image, which is what the test asks. Measured at
        # batch 8 x 1000 steps (greedy paint / caption accuracy, one / two objects): static
        # 0.66 / 0.36 and 0.995 / 0.76; dynamic (the top 0, 2, 4 or 6 code rows given as
        # pixels) 0.53 / 0.18 and 0.97 / 0.85.
        # input_noise (ours): 15% of the painter's input codes are replaced by random ones.
        # A little noise makes every cell read the caption (without it a small object's first
        # cell, whose jitter phase is uncertain, often stays background and the object is
        # left out); much noise hides the neighbouring codes that fix an object's jitter
        # phase, so jittered objects come out ragged (teacher-forced, the painter of the
        # 0.7-noise run below predicted 24% of the cells of small objects right, that of the
        # noise-free run 78%). Batch 16 x 700 steps, lr 8e-4, greedy paint / caption
        # accuracy: noise 0: 0.91 / 0.68 and 1.0 / 0.99; 0.15: 0.92 / 0.92 and 1.0 / 0.98.
        # At lr 5e-4: noise 0: 0.85 / 0.45; 0.15: 0.85 / 0.59; 0.3: 0.81 / 0.57; 0.7:
        # 0.70 / 0.32 (a schedule from 0.7 down to 0.1 over the second half: 0.64 / 0.34).
        dict(type='PrefixImage', weight=1.0, mode='static', input_noise=0.15),
    ],
    # tools/test.py: write a caption for every test scene and paint every caption (greedy)
    head=dict(type='WritePaintHead'),
)
# Batch 16 x 700 steps (noise 0.7 then, lr 5e-4; greedy paint / caption accuracy, one / two
# objects): 0.72 / 0.34 and 1.0 / 0.975. In about the same time: batch 8 x 1000 steps
# 0.66 / 0.36 and 0.995 / 0.76; batch 24 x 420 0.49 / 0.15 and 0.96 / 0.27; batch 16 x 600
# 0.72 / 0.27 and 0.98 / 0.63. A step's fixed costs (the optimizer and the [V, D] embedding
# gradients) make larger batches cheaper per sample, but the two-object captions need about
# 700 updates to form (at initializer_range 0.02). The shipped recipe with the batch-8 x 1400
# tokenizer (2 threads): captions 1.00 / 0.99, greedy paintings 0.95 / 0.87 (at 0.02 and
# empty_prefix_prob 0.5: 1.00 / 1.00 and 0.97 / 0.79).
train_dataloader = dict(batch_size=16)

max_iters = 700
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(
    constructor='GroupedOptimWrapperConstructor',  # one param group per setting, not per tensor
    # fused: one kernel for the whole update (on 2 cores 0.04 s a step instead of 0.09-0.1).
    # lr 8e-4: the painter learns faster than at 5e-4 (numbers above); 1e-3 diverged (dynamic
    # PrefixImage, batch 8 x 1000 steps: paint and captions near 0).
    optimizer=dict(type='AdamW', lr=8e-4, betas=(0.9, 0.98), weight_decay=0.01, fused=True),
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
