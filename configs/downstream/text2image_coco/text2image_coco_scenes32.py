# COCO text-to-image, the scene version that learns on a CPU: the quick start's tiny DaVinci at
# 32 px fine-tuned to paint procedural scenes from the captioning task's Karpathy-format data
# (docs/tasks/text2image_coco.md).
#   python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 --tasks caption
#   python tools/quickstart.py        # once: work_dirs/quickstart/davinci/iter_700.pth
#   python tools/train.py configs/downstream/text2image_coco/text2image_coco_scenes32.py
#   python -m davinci_zoo_scenes.train_features --seed 0   # the scene FID network (below)
#   python tools/test.py configs/downstream/text2image_coco/text2image_coco_scenes32.py \
#       work_dirs/text2image_coco_scenes32/iter_450.pth
# From random initialisation the tokenizer still needs its trained weights:
#   --cfg-options model.pretrained=None \
#       model.image_tokenizer.checkpoint=work_dirs/quickstart/tokenizer/vqgan.safetensors
_base_ = ['./text2image_coco_base.py', '../../_base_/models/vqgan_f4_scenes32.py']

image_size = 32
data_root = 'data/scenes_tasks/caption'  # the captioning scenes: dataset_coco.json + images
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
    visual_vocab_size=1024,  # the scene tokenizer's codebook
    image_code_grid=(8, 8),  # its codes of a 32 px image (4 px cells)
    initializer_range=0.04,
    image_embedder=dict(
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1, 1),
        base_planes=16,
        stem_channels=32,
        stem_pool=False,
        stem_stride=2,
    ),
    # the scene tokenizer; its weights come with the pretrained checkpoint
    image_tokenizer={{_base_.image_tokenizer}},
    # the quick start's painting options, so its checkpoint's keys all fit
    image_grid_embeddings=True,
    painting_relative_bias=True,
    pretrained='work_dirs/quickstart/davinci/iter_700.pth',  # the quick start's DaVinci
    objectives=[],
    head=dict(
        type='TextToImageHead',
        num_samples=8,  # paintings per caption; the best by the caption likelihood is kept
        scorer='CaptionLikelihoodScorer',
        generation=dict(temperature=0.5),  # at 1.0 stray codes paint extra blobs (see docs)
    ),
)

pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    dict(type='Resize', scale=(image_size, image_size), backend='pillow', interpolation='bicubic'),
    dict(type='PreCaption', max_words=30),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        ann_file=ann_file,
        data_root=data_root,
        split=['train', 'restval'],  # the scenes kept out of val and test
        pipeline=pipeline,
    ),
)
test_dataloader = dict(
    batch_size=50,
    num_workers=0,
    dataset=dict(
        ann_file=ann_file,
        data_root=data_root,
        split='test',  # every test scene, one of its captions each (seed 0)
        max_images=None,
        pipeline=pipeline,
    ),
)
# FID (and IS) on a small scene classifier's features instead of Inception's (not comparable
# with COCO FIDs), and the analyser's paint accuracy.
test_evaluator = [
    dict(
        type='ImageGenerationMetric',
        # the scene FID network, trained by the command above on other seeded scenes
        feature_extractor=dict(
            type='SceneFeatures', weights='data/scenes_tasks/scene_features_32px.safetensors'
        ),
        # the test renders' statistics in that network's features, computed once
        reference_stats=data_root + '/fid_reference_test_32px_scene_features.safetensors',
        is_splits=10,  # IS over the first object's 36 classes, in 10 splits
        seed=0,  # the shuffle before the IS splits
    ),
    dict(type='ScenePaintAccuracy'),  # the analyser reads each painting back as its caption
]

max_iters = 450  # about 1.2 epochs of the 12,500 captions: ~4.5 minutes on 1 thread
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
log_processor = dict(by_epoch=False, window_size=10)  # logs by iteration
optim_wrapper = dict(
    optimizer=dict(lr=3e-4, betas=(0.9, 0.98), weight_decay=0.01),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=20),  # warm-up
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        _delete_=True, type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1
    ),
)
