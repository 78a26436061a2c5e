# DaVinci base pretraining: the paper's model and recipe (docs/original.md sections 1, 2).
#   bash tools/dist_train.sh configs/davinci_base.py 8
#   python tools/train.py configs/davinci_base.py        # one process
# Needs the data of docs/data.md and the converted taming VQGAN weights; without them it
# stops with one line naming the missing path.
_base_ = [
    '_base_/default_runtime.py',
    '_base_/models/davinci_base.py',
    '_base_/datasets/pretrain_pairs_c4.py',
    '_base_/schedules/pretrain_adamw_linear.py',
]

# Different split points on every rank (the original drew one for all ranks).
randomness = dict(seed=42, diff_rank_seed=True)
log_processor = dict(by_epoch=False, window_size=50)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10_000, max_keep_ckpts=20),
)
custom_hooks = [
    dict(type='RNGStateHook'),
    dict(type='ProvenanceHook'),
    dict(type='BadRowsHook', max_bad_fraction=0.01),
]
