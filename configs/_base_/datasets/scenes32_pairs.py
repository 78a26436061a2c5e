# Procedural scenes as image-caption pairs for DaVinci at 32 px. Training scenes leave out the
# held-out colour/shape pairs; the test set is 400 fresh renders (half with two objects) from
# another seed, held-out pairs included (reported separately as unseen combinations).
image_size = 32
# Objects jitter in steps of 2 px (1/16 of the side; the scenes' default is continuous), so
# their 4x4 cells come in ~800 patches the tokenizer's 1024 codes hold exactly.
jitter_step = 1 / 16
# Captions are tokenised once, in the data workers; packing makes the model inputs.
pipeline = [dict(type='TokenizeText', keys=['caption']), dict(type='PackDaVinciInputs')]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ProceduralScenes',
        num_scenes=200_000,
        image_size=image_size,
        seed=1,
        two_object_prob=0.5,
        held_out='exclude',
        jitter_step=jitter_step,
        pipeline=pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_dataloader = dict(
    batch_size=100,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ProceduralScenes',
        num_scenes=400,
        image_size=image_size,
        seed=20_000,
        two_object_prob=0.5,
        held_out='include',
        jitter_step=jitter_step,
        pipeline=pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_evaluator = dict(type='SceneWritePaintMetric')
test_cfg = dict(type='TestLoop')
