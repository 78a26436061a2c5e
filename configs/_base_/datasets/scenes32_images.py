# Procedural scenes as images (for image tokenizers): 32 px, seeded; validation/test scenes are
# fresh renders from another seed. The tokenizer trains on every colour/shape pair, held-out
# ones included: like the paper's VQGAN, trained on generic images, it is not part of what the
# compositional test withholds (only DaVinci never sees those pairs, scenes32_pairs.py).
image_size = 32
# Objects jitter in steps of 2 px at 32 px (1/16 of the side), as in the quick start's pairs
# (scenes32_pairs.py): the tokenizer is trained on the scenes DaVinci paints.
jitter_step = 1 / 16
# Rendered scenes are uint8 images already: the image is the input; the caption goes only to
# the data sample (the metric's analyser checks reconstructions against it).
pipeline = [dict(type='PackDaVinciInputs', text_keys=[], algorithm_keys=['caption'])]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ProceduralScenes',
        num_scenes=50000,
        image_size=image_size,
        seed=0,
        held_out='include',
        jitter_step=jitter_step,
        pipeline=pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
val_dataloader = dict(
    batch_size=100,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ProceduralScenes',
        num_scenes=500,
        image_size=image_size,
        seed=10_000,
        jitter_step=jitter_step,
        pipeline=pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
# written out, not `= val_dataloader`: a child that overrides one must not silently keep the other
test_dataloader = dict(
    batch_size=100,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ProceduralScenes',
        num_scenes=500,
        image_size=image_size,
        seed=10_000,
        jitter_step=jitter_step,
        pipeline=pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
