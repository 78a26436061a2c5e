# ImageNet-style fine-tuning on procedural scenes at 32 px, on a CPU: the paper's recipe with the
# quick start's tiny DaVinci on the scene classification set (docs/tasks/imagenet.md):
#   python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 --tasks classification
#   python tools/train.py configs/downstream/imagenet/imagenet_scenes32.py
#   python tools/test.py configs/downstream/imagenet/imagenet_scenes32.py \
#       work_dirs/imagenet_scenes32/epoch_4.pth
# Needs the quick start's checkpoint (python tools/quickstart.py).
_base_ = ['./imagenet_base.py']

image_size = 32
num_classes = 18  # two shapes (3 x 3) and their relation (above, left of)
model = dict(
    # the quick start's model (configs/davinci_tiny_scenes32.py), so its checkpoint fits
    image_size=image_size,
    hidden_size=256,
    num_heads=4,
    intermediate_size=1024,
    encoder_layers=3,
    decoder_layers=3,
    dropout=0.0,
    max_text_positions=40,
    visual_vocab_size=1024,  # the scene tokenizer's codebook (the tokenizer is not built)
    image_code_grid=(8, 8),
    initializer_range=0.04,
    image_embedder=dict(
        _delete_=True,
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1, 1),
        base_planes=16,
        stem_channels=32,
        stem_pool=False,
        stem_stride=2,
    ),
    image_tokenizer=None,  # nothing reads image codes; the checkpoint's tokenizer is dropped
    image_grid_embeddings=True,  # painting parts of the quick start's model: its keys
    painting_relative_bias=True,
    pretrained='work_dirs/quickstart/davinci/iter_700.pth',
    # no Mixup / CutMix: a mixed scene shows parts of two relations, not a blend of classes
    data_preprocessor=dict(num_classes=num_classes, batch_augments=None),
    head=dict(num_classes=num_classes),
)

data_root = 'data/scenes_tasks/classification'  # ImageFolder: train/<class>/, test/<class>/
# Scenes are rendered at 32 px: no crop, flip (it would swap "left of"), RandAugment or
# erasing (shapes and places are the classes); Resize only guards against other sizes.
pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(
        type='Resize',
        scale=(image_size, image_size),
        keep_ratio=False,
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='PackDaVinciInputs'),
]
# the scenes load fast: no worker processes competing for the CPU
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=64,
    **loader,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',  # mmpretrain's ImageFolder: classes = the sorted folder names
        data_root=data_root,
        data_prefix='train',
        pipeline=pipeline,
    ),
)
val_dataloader = dict(
    batch_size=200,
    **loader,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='test',  # the set has no validation split: test after every epoch
        pipeline=pipeline,
    ),
)
test_dataloader = val_dataloader

# 4 epochs of ~78 steps: warm-up over the first, cosine to the end; a narrow model on a small
# set takes a higher rate than the recipe's 5e-4 x 64 / 256
max_epochs = 4
warmup_epochs = 1
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
auto_scale_lr = dict(enable=False)  # the lr above as it is
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
default_hooks = dict(logger=dict(interval=25))
