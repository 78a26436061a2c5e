# COCO captioning, the scene version that learns on a CPU: the quick start's tiny DaVinci at
# 32 px fine-tuned on procedural scenes written in Karpathy's format (docs/tasks/caption_coco.md).
#   python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 --tasks caption
#   python tools/quickstart.py        # once: work_dirs/quickstart/davinci/iter_700.pth
#   python tools/train.py configs/downstream/caption_coco/caption_coco_scenes32.py
#   python tools/test.py configs/downstream/caption_coco/caption_coco_scenes32.py \
#       work_dirs/caption_coco_scenes32/iter_150.pth
_base_ = ['./caption_coco_base.py']

image_size = 32
data_root = 'data/scenes_tasks/caption'  # dataset_coco.json and the images it names
ann_file = data_root + '/dataset_coco.json'

model = dict(
    _delete_=True,  # the tiny model of configs/davinci_tiny_scenes32.py, not the base one
    type='DaVinci',
    image_size=image_size,
    hidden_size=256,
    num_heads=4,
    intermediate_size=1024,
    encoder_layers=3,
    decoder_layers=3,
    dropout=0.0,
    max_text_positions=40,
    visual_vocab_size=1024,  # the scene tokenizer's codebook (not built: nothing paints)
    image_code_grid=(8, 8),
    initializer_range=0.04,
    image_embedder=dict(
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1, 1),
        base_planes=16,
        stem_channels=32,
        stem_pool=False,
        stem_stride=2,
    ),
    # the quick start's painting options, so its checkpoint's keys all fit
    image_grid_embeddings=True,
    painting_relative_bias=True,
    pretrained='work_dirs/quickstart/davinci/iter_700.pth',  # the quick start's DaVinci
    objectives=[],
    head=dict(
        type='CaptionHead',
        prompt='a picture of ',
        label_smoothing=0.1,
        max_tokens=25,
        generation=dict(num_beams=2, max_length=20, min_length=5, count_prompt=True),
    ),
)

# Scenes are rendered at 32 px; no crops, flips or RandAugment (captions name positions).
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(type='Resize', scale=(image_size, image_size), backend='pillow', interpolation='bicubic'),
    dict(type='PreCaption', max_words=30),  # one of the paraphrases of the row
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(type='Resize', scale=(image_size, image_size), backend='pillow', interpolation='bicubic'),
    dict(type='KeepCaptionReferences'),  # all paraphrases are references
    dict(type='PreCaption', max_words=30),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs', algorithm_keys=['references']),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,  # small images: decoded in the training process
    persistent_workers=False,
    dataset=dict(ann_file=ann_file, data_root=data_root, pipeline=train_pipeline),
)
test_dataloader = dict(
    batch_size=50,
    num_workers=0,
    dataset=dict(ann_file=ann_file, data_root=data_root, pipeline=test_pipeline),
)
# no validation during the short run: train, then tools/test.py on the test split
val_dataloader = None
val_evaluator = None
val_cfg = None
# CIDEr, BLEU, METEOR, ROUGE-L against the five references, and caption accuracy: the written
# caption states exactly the scene, in any of its phrasings (the scenes plugin's parser)
test_evaluator = [
    dict(type='WritePaintMetric', prefix='caption'),
    dict(type='SceneCaptionAccuracy'),
]

max_iters = 150  # about 5 minutes on 2 CPU cores (~2 s a step of 32)
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
log_processor = dict(by_epoch=False, window_size=10)  # logs by iteration
optim_wrapper = dict(
    # the quick start's settings for this width; fine-tuning starts a little lower
    optimizer=dict(lr=3e-4, betas=(0.9, 0.98), weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=20),  # warm-up
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, eta_min=1e-5),
]
randomness = dict(seed=0, diff_rank_seed=True)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        _delete_=True, type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1
    ),
)
