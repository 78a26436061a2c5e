# NLVR2 fine-tuning of DaVinci base: the paper's recipe (docs/original.md section 4.2).
#   bash tools/dist_train.sh configs/downstream/nlvr2/nlvr2_base.py 8
#   python tools/test.py configs/downstream/nlvr2/nlvr2_base.py \
#       work_dirs/nlvr2_base/best_accuracy_top1_epoch_N.pth      # accuracy on test1
# Data layout and every decision: docs/tasks/nlvr2.md.
_base_ = [
    '../../_base_/finetune_runtime.py',
    '../../_base_/models/davinci_base.py',
    '../../_base_/schedules/finetune_adamw_linear.py',
]

image_size = 384  # the original's NLVR2 resolution: 24x24 + 1 image tokens per image
model = dict(
    image_size=image_size,  # the 256 px pretraining position tables are resized on load
    # the pretraining run of configs/davinci_base.py (its last checkpoint)
    pretrained='work_dirs/davinci_base/iter_104000.pth',
    objectives=[],  # fine-tuning: the head's loss only (no image tokenizer is built)
    # each image with the sentence -> two [SEP] states, concatenated -> MLP -> True/False
    head=dict(type='PairClassificationHead', num_classes=2, text_key='text'),
)

data_root = 'data/nlvr2'
# The share of rows a run may skip (a missing or broken image): the organisers' image download
# is complete; images fetched from the rows' URLs miss about 5%: raise it to 0.06 for those.
max_bad_fraction = 0.01
# mmcv's TransformBroadcaster runs its steps on each image of the pair on its own (each
# gets its own random crop), then hands back the two images as a list that
# PackDaVinciInputs packs as [2, 3, H, W]. LoadImageFromFile must raise for a missing file
# (ignore_empty=False): the dataset then counts the row as bad.
pair_keys = dict(img='img', img_path='img_path', img_shape='img_shape', ori_shape='ori_shape')
train_image_steps = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    # the original's RandomResizedCrop(scale 0.5-1, bicubic); no horizontal flip (see docs)
    dict(
        type='RandomResizedCrop',
        scale=image_size,
        crop_ratio_range=(0.5, 1.0),
        backend='pillow',
        interpolation='bicubic',
    ),
    # the original's RandAugment: 2 of these per image at magnitude 7 of 10 (mmpretrain's
    # magnitude scales; the original's Identity is left out)
    dict(
        type='RandAugment',
        policies=[
            dict(type='AutoContrast'),
            dict(type='Equalize'),
            dict(type='Brightness', magnitude_range=(0, 0.9)),
            dict(type='Sharpness', magnitude_range=(0, 0.9)),
            dict(type='Shear', magnitude_range=(0, 0.3), direction='horizontal'),
            dict(type='Shear', magnitude_range=(0, 0.3), direction='vertical'),
            dict(type='Translate', magnitude_range=(0, 0.45), direction='horizontal'),
            dict(type='Translate', magnitude_range=(0, 0.45), direction='vertical'),
            dict(type='Rotate', magnitude_range=(0, 30)),
        ],
        num_policies=2,
        magnitude_level=7,
        total_level=10,
    ),
]
test_image_steps = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    # the original's test transform: both sides to the resolution (no crop)
    dict(
        type='Resize',
        scale=(image_size, image_size),
        keep_ratio=False,
        backend='pillow',
        interpolation='bicubic',
    ),
]
text_steps = [
    dict(type='PreCaption', keys=['text'], max_words=30),  # the original's sentence cleaning
    dict(type='TokenizeText', keys=['text']),
    dict(type='PackDaVinciInputs', text_keys=['text']),
]
train_pipeline = [
    dict(
        type='TransformBroadcaster',
        mapping=dict(img_path='img_path'),
        remapping=pair_keys,
        transforms=train_image_steps,
    ),
    *text_steps,
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        mapping=dict(img_path='img_path'),
        remapping=pair_keys,
        transforms=test_image_steps,
    ),
    *text_steps,
]

train_dataloader = dict(
    batch_size=10,  # per GPU (the original: 10 on each of 8 GPUs)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='NLVR2',
        ann_file=f'{data_root}/train.json',
        data_root=f'{data_root}/images/train',  # numbered folders, named by each row
        pipeline=train_pipeline,
        max_bad_fraction=max_bad_fraction,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
val_dataloader = dict(
    batch_size=20,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='NLVR2',
        ann_file=f'{data_root}/dev.json',
        data_root=f'{data_root}/dev',
        pipeline=test_pipeline,
        max_bad_fraction=max_bad_fraction,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_dataloader = dict(
    batch_size=20,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='NLVR2',
        ann_file=f'{data_root}/test1.json',  # the public test set (test-P)
        data_root=f'{data_root}/test1',
        pipeline=test_pipeline,
        max_bad_fraction=max_bad_fraction,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
# mmpretrain's Accuracy on the head's pred_label: accuracy/top1 in percent
val_evaluator = dict(type='Accuracy', topk=(1,))
test_evaluator = val_evaluator

# 9 epochs, dev accuracy after each (the original scored dev and test1 every epoch); warm-up
# over the first epoch, then linear decay to 0
train_cfg = dict(max_epochs=9, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(weight_decay=0.0))  # the original's: no weight decay
default_hooks = dict(
    # every epoch, keeping the last one and the best on dev
    checkpoint=dict(max_keep_ckpts=1, save_best='accuracy/top1', rule='greater'),
)
