# COCO text-to-image: fine-tune DaVinci base on COCO captions, then paint N samples per caption,
# keep the best and score FID / IS (docs/original.md 3.2; protocol and decisions:
# docs/tasks/text2image_coco.md).
#   bash tools/dist_train.sh configs/downstream/text2image_coco/text2image_coco_base.py 8
#   python tools/test.py configs/downstream/text2image_coco/text2image_coco_base.py CHECKPOINT
_base_ = [
    '../../_base_/finetune_runtime.py',
    '../../_base_/models/davinci_base.py',
    '../../_base_/schedules/finetune_adamw_linear.py',
]

image_size = 256  # the VQGAN f16's 16x16 codes
data_root = 'data/coco'  # holds train2014/ and val2014/ (the COCO 2014 images)
ann_file = data_root + '/dataset_coco.json'  # Karpathy's split file

model = dict(
    pretrained='work_dirs/davinci_base/iter_104000.pth',  # the pretraining run's last checkpoint
    objectives=[],  # fine-tuning: the head's painting loss only
    head=dict(
        type='TextToImageHead',
        num_samples=128,  # paintings per caption, as the original drew
        # ranked by the model's own caption likelihood; the original ranked with CLIP:
        # scorer=dict(type='CLIPScorer', weights='checkpoints/clip/ViT-B-32.safetensors')
        scorer='CaptionLikelihoodScorer',
        generation=dict(temperature=1.0),  # plain sampling over the image codes
    ),
)

# The short side resized to 256 px (bicubic), the centre square kept; no flips (captions
# name left and right). The same for the real images FID compares against.
pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(
        type='ResizeEdge', scale=image_size, edge='short', backend='pillow', interpolation='bicubic'
    ),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='PreCaption', max_words=30),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs', meta_keys=('sample_idx', 'img_path', 'cocoid')),
]
train_dataloader = dict(
    batch_size=24,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CocoKarpathyCaptions',
        ann_file=ann_file,
        data_root=data_root,
        split='train',  # the train2014 images only: every val2014 image may be evaluated
        items='captions',  # one item per caption
        pipeline=pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
# The protocol: 30,000 val2014 images (Karpathy's val + test + restval), drawn with seed 0,
# one caption each (drawn with seed 0); FID against those same 30,000 real images.
test_dataloader = dict(
    batch_size=8,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoKarpathyCaptions',
        ann_file=ann_file,
        data_root=data_root,
        split=['val', 'test', 'restval'],
        items='images',
        caption_seed=0,  # which caption of each image is painted
        max_images=30_000,
        subset_seed=0,  # which images
        pipeline=pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_evaluator = dict(
    type='ImageGenerationMetric',
    # torch-fidelity's Inception (pt_inception-2015-12-05); the metric says where to get it
    inception_weights='checkpoints/inception/weights-inception-2015-12-05-6726825d.pth',
    # the real images' FID statistics, computed once and then read from here
    reference_stats=data_root + '/fid_reference_val2014-30k-seed0_256px.safetensors',
    is_splits=10,  # the standard Inception Score splits
    seed=0,  # the shuffle before the IS splits
    # CLIP score of every painting against its caption (davinci-zoo-clip), when given:
    # clip_scorer=dict(type='CLIPScorer', weights='checkpoints/clip/ViT-B-32.safetensors'),
)
test_cfg = dict(type='TestLoop')

# Fine-tuning schedule (ours: the original ships no COCO painting fine-tuning): the
# captioning recipe's optimiser for 5 epochs, 1 of them warm-up, no validation loop
train_cfg = dict(max_epochs=5)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
# seeds the sampling of the paintings too (the painting seed of the protocol)
randomness = dict(seed=0)
