# The fine-tuning schedule of the downstream tasks (docs/original.md section 4): epochs, AdamW,
# a per-step linear warm-up then linear decay to 0 (configs/_base_/finetune_runtime.py has the
# checkpoints and hooks). A task sets train_cfg.max_epochs and the learning rate.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)
optim_wrapper = dict(
    constructor='GroupedOptimWrapperConstructor',  # one param group per setting
    # no decay on biases, norms, position and bias tables (as pretraining; docs/original.md 8.9)
    optimizer=dict(type='AdamW', lr=2e-5, betas=(0.9, 0.999), weight_decay=0.02, fused=True),
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
# linear warm-up over the first epoch, then linear decay to 0 at the last epoch (no `end`:
# the Runner ends it at train_cfg.max_epochs), both stepped every iteration
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=1,
        convert_to_iter_based=True,
    ),
]
