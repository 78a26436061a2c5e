# The runtime of the downstream tasks: default_runtime.py with epoch-based logging and
# checkpoints (one per epoch), a fixed seed and the zoo's provenance and bad-row hooks.
_base_ = ['./default_runtime.py']

randomness = dict(seed=42, diff_rank_seed=True)
log_processor = dict(by_epoch=True, window_size=50)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=2),
)
custom_hooks = [
    dict(type='RNGStateHook'),  # random states in checkpoints (exact resume)
    dict(type='ProvenanceHook'),  # zoo and plugin versions in checkpoints
    dict(type='BadRowsHook', max_bad_fraction=0.01),  # bad rows counted over all workers
]
