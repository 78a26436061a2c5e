# A tiny DaVinci that learns to write, paint and match texts to images of procedural scenes on
# a CPU (the quick start).
#   python tools/quickstart.py            # trains the tokenizer, then this, then scores it
# Run alone it needs the tokenizer weights:
#   python tools/train.py configs/davinci_tiny_scenes32.py --cfg-options \
#       model.image_tokenizer.checkpoint=work_dirs/quickstart/tokenizer/vqgan.safetensors
# The measurements behind its settings: docs/experiments/quickstart.md.
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
    initializer_range=0.04,  # a wider start than BERT's 0.02: reads the image far sooner
    image_embedder=dict(
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1, 1),
        base_planes=16,
        stem_channels=32,
        stem_pool=False,
        stem_stride=2,
    ),
    image_tokenizer={{_base_.image_tokenizer}},
    # Our painting options (docs/model.md), off in the base configs:
    image_grid_embeddings=True,
    painting_relative_bias=True,
    image_embedding_init='codebook',
    objectives=[
        # 80% of the captions are written whole (k = 0), as captioning asks
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.8),
        # static: plain text-to-image (what the test asks); 15% of the input codes noised
        dict(type='PrefixImage', weight=1.0, mode='static', input_noise=0.15),
        # image-text contrast: pulls each scene's image and caption embeddings together
        dict(type='ImageTextContrastive', weight=0.25, name='itc'),
        # does this caption describe this image? Negatives drawn by ITC's similarities (the
        # batch's closest confusions): together they teach finding the object a text names,
        # which the NLVR2 and VQA scene tasks need (docs/experiments/quickstart.md)
        dict(type='ImageTextMatching', weight=0.25, name='itm'),
    ],
    # tools/test.py: write a caption for every test scene and paint every caption (greedy)
    head=dict(type='WritePaintHead'),
)
# 16 x 700 steps: the two-object captions need about 700 updates to form
train_dataloader = dict(batch_size=16)

max_iters = 700
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(
    constructor='GroupedOptimWrapperConstructor',  # one param group per setting, not per tensor
    # fused: one kernel for the whole update; lr 8e-4 paints better than 5e-4, 1e-3 diverged
    optimizer=dict(type='AdamW', lr=8e-4, betas=(0.9, 0.98), weight_decay=0.01, fused=True),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            # zero-initialised; Adam moves them ~lr a step, 20x lets them shape attention
            'relative_bias_table': dict(decay_mult=0.0, lr_mult=20.0),
            'logit_scale': dict(decay_mult=0.0),  # ITC's learned temperature, as in CLIP
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
