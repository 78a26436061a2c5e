# A tiny DaVinci that learns to write and paint your own image-caption pairs at 32 px on a
# CPU (docs/custom_data.md). It paints with the tokenizer trained and exported first:
#   python tools/train.py configs/custom/davinci-tiny_1xb16-700it_custom-captions-32px.py
#   python tools/test.py configs/custom/davinci-tiny_1xb16-700it_custom-captions-32px.py \
#       work_dirs/davinci-tiny_1xb16-700it_custom-captions-32px/iter_700.pth
# The model is the quick start's (configs/davinci_tiny_scenes32.py; the runs behind its
# settings are in docs/experiments/quickstart.md) with a generic tokenizer and data.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/datasets/image_captions_32.py',
    '../_base_/models/vqgan_f4_32.py',
]

# Where your data is: change these paths (or give them with --cfg-options).
data_root = 'data/custom'  # the folder the annotation files' image paths start from
train_dataloader = dict(
    batch_size=16,  # pairs per step
    dataset=dict(data_root=data_root, ann_file=data_root + '/captions_train.json'),
)
test_dataloader = dict(  # held-out pairs for tools/test.py
    dataset=dict(data_root=data_root, ann_file=data_root + '/captions_test.json')
)
# The exported tokenizer (tools/export_tokenizer.py); training stops with one line if missing.
tokenizer_weights = 'checkpoints/custom_vqgan_f4_32.safetensors'

model = dict(
    type='DaVinci',
    image_size=32,  # = the pipelines' image_size and the tokenizer's resolution
    hidden_size=256,  # transformer width
    num_heads=4,  # attention heads
    intermediate_size=1024,  # feed-forward width
    encoder_layers=3,  # bidirectional encoder over the image and the text prefix
    decoder_layers=3,  # causal decoder that writes text or paints codes
    dropout=0.0,  # none: a short run on little data
    max_text_positions=40,  # [CLS] + up to 30 cleaned words as WordPiece tokens + [SEP]
    visual_vocab_size=1024,  # = the tokenizer's codebook_size
    image_code_grid=(8, 8),  # its codes of a 32 px image (4 px cells)
    initializer_range=0.04,  # wider than BERT's 0.02 at this width: learns sooner
    image_embedder=dict(  # a small ResNet: 32 px -> 8x8 image tokens
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1, 1),
        base_planes=16,
        stem_channels=32,
        stem_pool=False,
        stem_stride=2,
    ),
    # merged into the tokenizer of _base_/models/vqgan_f4_32.py: its trained weights
    image_tokenizer=dict(checkpoint=tokenizer_weights),
    image_grid_embeddings=True,  # row/column embeddings of the code grid (docs/model.md)
    painting_relative_bias=True,  # 2-D relative attention bias while painting
    image_embedding_init='codebook',  # visual words start from the tokenizer's code vectors
    objectives=[
        # Writing: most captions (80%) are written whole, as captioning asks.
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.8),
        # Painting from the whole caption; 15% of the painter's input codes are noised.
        dict(type='PrefixImage', weight=1.0, mode='static', input_noise=0.15),
    ],
    # tools/test.py: write a caption for each test image, paint each caption (greedy), and
    # score each painting with the model's own caption likelihood (WritePaintMetric).
    head=dict(type='WritePaintHead', painting_likelihood=True),
)

max_iters = 700  # steps of 16 pairs (700 x 16 / your pair count = passes over the data)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(
    constructor='GroupedOptimWrapperConstructor',  # one param group per setting, not per tensor
    optimizer=dict(type='AdamW', lr=8e-4, betas=(0.9, 0.98), weight_decay=0.01, fused=True),
    clip_grad=dict(max_norm=1.0),  # gradient norm clipping
    paramwise_cfg=dict(
        norm_decay_mult=0.0,  # no weight decay on norms and biases
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            # zero-initialised bias tables need a larger step to matter in a short run
            'relative_bias_table': dict(decay_mult=0.0, lr_mult=20.0),
        },
    ),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=50),  # warm-up
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=2e-5),
]
randomness = dict(seed=0, diff_rank_seed=True)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),  # a log line every 25 steps
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
)
custom_hooks = [
    dict(type='RNGStateHook'),  # random states in checkpoints (exact resume)
    dict(type='ProvenanceHook'),  # zoo and plugin versions in checkpoints
    dict(type='WritePaintSamplesHook'),  # tools/test.py: captions.tsv and paintings.png
]
