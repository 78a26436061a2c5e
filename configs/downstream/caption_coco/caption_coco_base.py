# COCO captioning on the Karpathy split: the paper's fine-tuning recipe (docs/original.md 4.4),
# from the DaVinci base pretraining checkpoint. Data layout and decisions:
# docs/tasks/caption_coco.md.
#   bash tools/dist_train.sh configs/downstream/caption_coco/caption_coco_base.py 8
#   python tools/test.py configs/downstream/caption_coco/caption_coco_base.py CHECKPOINT
_base_ = [
    '../../_base_/finetune_runtime.py',
    '../../_base_/models/davinci_base.py',
    '../../_base_/schedules/finetune_adamw_linear.py',
]

image_size = 576  # the original's captioning resolution (36x36 image tokens)
data_root = 'data/coco'  # holds train2014/ and val2014/ (the COCO 2014 images)
ann_file = data_root + '/dataset_coco.json'  # Karpathy's split file

model = dict(
    image_size=image_size,  # the pretrained position tables are resized to this grid
    pretrained='work_dirs/davinci_base/iter_104000.pth',  # the pretraining run's last checkpoint
    objectives=[],  # fine-tuning: the head's loss only
    head=dict(
        type='CaptionHead',
        prompt='a picture of ',  # read by the decoder first, never scored, not in the output
        label_smoothing=0.1,  # the original's, on the caption tokens
        max_tokens=25,  # [CLS] + prompt + caption + [SEP]
        # the original's decoding: 2 beams, 5 to 20 tokens counting [CLS] a picture of
        generation=dict(num_beams=2, max_length=20, min_length=5, count_prompt=True),
    ),
)

# The original's training transform: a random crop of 50-100% of the image, resized bicubic,
# a horizontal flip and RandAugment (2 operations at magnitude 7 of 10).
train_pipeline = [
    # a missing or undecodable image is skipped and counted as a bad row
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(
        type='RandomResizedCrop',
        scale=image_size,
        crop_ratio_range=(0.5, 1.0),
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies=[
            dict(type='AutoContrast'),
            dict(type='Equalize'),
            dict(type='Brightness', magnitude_range=(0, 0.9)),
            dict(type='Sharpness', magnitude_range=(0, 0.9)),
            dict(type='Shear', magnitude_range=(0, 0.3), direction='horizontal'),
            dict(type='Shear', magnitude_range=(0, 0.3), direction='vertical'),
            dict(type='Translate', magnitude_range=(0, 0.3), direction='horizontal'),
            dict(type='Translate', magnitude_range=(0, 0.3), direction='vertical'),
            dict(type='Rotate', magnitude_range=(0, 30)),
        ],
        num_policies=2,
        magnitude_level=7,
        total_level=10,
    ),
    dict(type='PreCaption', max_words=30),  # the original's cleaning and word limit
    dict(type='TokenizeText', keys=['caption']),  # WordPiece ids, once, in the data workers
    dict(type='PackDaVinciInputs'),
]
# Evaluation: the whole image resized (bicubic) to a square, all references kept.
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(type='Resize', scale=(image_size, image_size), backend='pillow', interpolation='bicubic'),
    dict(type='KeepCaptionReferences'),  # every reference caption, for the scores
    dict(type='PreCaption', max_words=30),
    dict(type='TokenizeText', keys=['caption']),
    dict(
        type='PackDaVinciInputs',
        algorithm_keys=['references'],
        meta_keys=('sample_idx', 'img_path', 'cocoid'),
    ),
]


train_dataloader = dict(
    batch_size=24,  # per process, as the original's gen_coco.yaml
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CocoKarpathyCaptions',
        ann_file=ann_file,
        data_root=data_root,
        split=['train', 'restval'],  # Karpathy's training images (113,287)
        items='captions',  # one item per caption
        pipeline=train_pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoKarpathyCaptions',
        ann_file=ann_file,
        data_root=data_root,
        split='val',  # 5,000 images, to pick the epoch
        items='images',  # one item per image, with all its captions as references
        pipeline=test_pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_dataloader = dict(
    batch_size=32,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoKarpathyCaptions',
        ann_file=ann_file,
        data_root=data_root,
        split='test',  # the 5,000 images the papers report on
        items='images',
        pipeline=test_pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
# BLEU-1..4, METEOR, ROUGE-L and CIDEr (pycocoevalcap, PTB tokenizer) as caption/<name>
val_evaluator = dict(type='WritePaintMetric', prefix='caption')
test_evaluator = val_evaluator

# 15 epochs, val CIDEr after each; the original's AdamW (no gradient clipping in its
# fine-tuning) at 1e-5, warm-up over the first 2 epochs, then linear decay to 0
train_cfg = dict(max_epochs=15, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=2,
        convert_to_iter_based=True,
    ),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=2,
        convert_to_iter_based=True,
    ),
]
default_hooks = dict(
    # keep the epoch with the best CIDEr on val (the original took the best on test)
    checkpoint=dict(save_best='caption/CIDEr', rule='greater'),
)
