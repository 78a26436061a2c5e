# Runtime settings shared by every config: scope, hooks, logging, environment.
default_scope = 'davinci_zoo'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# RNGStateHook puts the random states into checkpoints so a resumed run continues exactly.
custom_hooks = [dict(type='RNGStateHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py switches to gloo on CPU-only machines
)

# Under DDP a rank whose batch holds no data for an objective (a step of text only) leaves
# the parameters only that objective uses without gradients; DDP must not wait for them.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False, window_size=10)
log_level = 'INFO'

load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
