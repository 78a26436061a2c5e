# ImageNet-1k fine-tuning of DaVinci base: the original's MAE-style recipe (docs/original.md 4.7).
#   bash tools/dist_train.sh configs/downstream/imagenet/imagenet_base.py 8
#   python tools/test.py configs/downstream/imagenet/imagenet_base.py \
#       work_dirs/imagenet_base/best_accuracy_top1_epoch_N.pth     # top-1 / top-5 on val
# Data layout and every decision: docs/tasks/imagenet.md.
_base_ = [
    '../../_base_/finetune_runtime.py',
    '../../_base_/models/davinci_base.py',
]

image_size = 256  # the pretraining resolution: the 16x16 + 1 image tokens of the probe feature
num_classes = 1000
# ImageNet's statistics, RGB on the [0, 255] scale (pretraining normalised with CLIP's)
mean = (123.675, 116.28, 103.53)
std = (58.395, 57.12, 57.375)
bgr_mean = mean[::-1]  # the pipeline's images are BGR (mmcv's order)
bgr_std = std[::-1]
model = dict(
    image_size=image_size,
    # the pretraining run of configs/davinci_base.py (its last checkpoint)
    pretrained='work_dirs/davinci_base/iter_104000.pth',
    objectives=[],  # fine-tuning: the head's loss only (no image tokenizer is built)
    data_preprocessor=dict(
        mean=mean,
        std=std,
        num_classes=num_classes,  # makes gt_label one-hot for the batch augments
        # per training batch one of the two, at random (timm's switch_prob 0.5); eval: none
        batch_augments=dict(
            augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]
        ),
    ),
    # image [CLS] state, mean patch state and the decoder's [SEP] state after "a picture of"
    # (3 x 768) -> MLP 2304 -> 768 -> ReLU -> 1000; label smoothing of the (mixed) targets
    head=dict(type='ImageClassificationHead', num_classes=num_classes, label_smoothing=0.1),
)

data_root = 'data/imagenet'  # train/, val/ and meta/{train,val}.txt: mmpretrain's layout
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    # timm's RandomResizedCrop: area 8-100%, aspect 3/4-4/3, bicubic
    dict(
        type='RandomResizedCrop',
        scale=image_size,
        crop_ratio_range=(0.08, 1.0),
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # timm's rand-m9-mstd0.5-inc1: 2 ops of the 'increasing' set at magnitude 9 +- 0.5 of
    # 10, pads with the mean colour
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic'),
    ),
    # timm's random erasing 0.25 ('pixel' mode: per-pixel normal noise at the data's stats)
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std,
    ),
    dict(type='PackDaVinciInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    # timm's evaluation: the short side to image_size / 0.875, then the centre square
    dict(
        type='ResizeEdge',
        scale=int(image_size / 0.875),
        edge='short',
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='PackDaVinciInputs'),
]
train_dataloader = dict(
    batch_size=512,  # per GPU: the original's 512 on each of 8 GPUs (4096 in all)
    num_workers=10,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageNet', data_root=data_root, split='train', pipeline=train_pipeline),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=10,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageNet', data_root=data_root, split='val', pipeline=test_pipeline),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_dataloader = val_dataloader  # ImageNet's test labels are not public: val is the test
# mmpretrain's Accuracy on the head's pred_score: accuracy/top1 and accuracy/top5 in percent
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

max_epochs = 100
warmup_epochs = 10
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    # layer-wise lr decay: every parameter group at lr x layer_decay_rate ** (layers above it)
    constructor='LayerDecayOptimWrapperConstructor',
    # lr 5e-4 per 256 images of the total batch: auto_scale_lr below makes it 8e-3 at 4096;
    # torch's default weight decay 0.01 (the original's)
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.01, fused=True),
    paramwise_cfg=dict(
        layer_decay_rate=1.0,  # off, as the original; e.g. 0.75 (MAE) turns it on
        # no decay on biases, norms, position and bias tables (docs/original.md 8.9)
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'relative_bias_table': dict(decay_mult=0.0),
        },
    ),
)
# lr x (GPUs x batch_size) / 256, applied by the Runner before the schedule starts
auto_scale_lr = dict(base_batch_size=256, enable=True)
# linear warm-up over 10 epochs, then a half-cycle cosine to 1e-6 at the last epoch (MAE's
# min_lr; no `end`: the Runner ends it at train_cfg.max_epochs), both stepped every iteration
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=warmup_epochs,
        convert_to_iter_based=True,
    ),
]
default_hooks = dict(
    # every epoch, keeping the last one and the best on val
    checkpoint=dict(max_keep_ckpts=1, save_best='accuracy/top1', rule='greater'),
)
