# The pretraining cell of the objective ablation (docs/ablations.md): the quick start's tiny
# DaVinci on a seeded subset of the scenes, for a fixed number of steps. A mix config
# (configs/ablations/*.py) inherits this and sets model.objectives; tools/ablate.py sets the
# subset's size (train_dataloader.dataset.size) of each data scale.
_base_ = ['../../davinci_tiny_scenes32.py']

# Pretraining steps of every cell (batch 16), the same for every mix and data scale
steps_per_cell = 400
# Largest data scale of the grid (scenes): the default subset size
largest_scale = 8000

model = dict(
    # the quick start's tokenizer; make it with `python tools/quickstart.py` (its step 1)
    image_tokenizer=dict(checkpoint='work_dirs/quickstart/tokenizer/vqgan.safetensors'),
)

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            # ITC's learned temperature (a log scale): no weight decay, as in CLIP
            'logit_scale': dict(decay_mult=0.0),
        },
    ),
)

train_dataloader = dict(
    batch_size=16,  # scenes per step
    dataset=dict(
        _delete_=True,
        type='SubsetDataset',  # the first `size` scenes of a seeded permutation: nested scales
        size=largest_scale,  # scenes trained on (int) or a fraction of the pool (float)
        seed=0,  # the permutation: one seed keeps a small scale inside a larger one
        # the pool the scales are drawn from: the quick start's training scenes, 20k of them
        # (rendering the quick start's 200k takes ~7 s at every start)
        dataset={**_base_.train_dataloader.dataset, 'num_scenes': 20_000},
    ),
)
# held-out scenes for caption/paint accuracy and the held-out losses (another seed, unseen
# colour/shape pairs included and reported apart)
test_dataloader = dict(dataset=dict(num_scenes=200))

max_iters = steps_per_cell  # the quick start's name for it
train_cfg = dict(type='IterBasedTrainLoop', max_iters=steps_per_cell)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=50),  # warm-up
    dict(
        type='CosineAnnealingLR', by_epoch=False, begin=50, end=steps_per_cell, eta_min=2e-5
    ),  # then cosine decay to the last step
]
default_hooks = dict(
    # every 100 steps, so a killed cell resumes (tools/train.py --resume); the newest is kept
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=1),
)
