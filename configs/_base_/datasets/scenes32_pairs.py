# Procedural scenes as image-caption pairs for DaVinci at 32 px. Training scenes leave out the
# held-out colour/shape pairs; the test set is 400 fresh renders (half with two objects) from
# another seed, held-out pairs included (reported separately as unseen combinations).
image_size = 32

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
    ),
    collate_fn=dict(type='default_collate'),
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
    ),
    collate_fn=dict(type='default_collate'),
)
test_evaluator = dict(type='SceneWritePaintMetric')
test_cfg = dict(type='TestLoop')
