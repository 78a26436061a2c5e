# The paper's pretraining recipe (docs/original.md section 2.7): AdamW lr 2e-4, weight decay
# 0.01 (not on biases, norms, position tables, the cls token or the relative bias tables -- the
# original decayed those: set their decay_mult to 1.0 to reproduce it), gradient clipping 1.0,
# linear warm-up then linear decay to 0. The original trained 40 epochs of 1,335,283 pairs at
# 64 x 8 GPUs: ~2,600 steps per epoch.
steps_per_epoch = 2_600
max_iters = 40 * steps_per_epoch
warmup_iters = steps_per_epoch

optim_wrapper = dict(
    # one param group per distinct setting (a handful), not one per tensor (558 at base size)
    constructor='GroupedOptimWrapperConstructor',
    # fused: one kernel updates every tensor of a group (CPU and GPU)
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.01, fused=True),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'relative_bias_table': dict(decay_mult=0.0),
        },
    ),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters,
    ),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
