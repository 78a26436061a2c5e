# Objective mix: prefix LM only (writes, never paints).
#   python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations
_base_ = ['./_base_/pretrain_scenes32.py']

model = dict(
    objectives=[
        # write: 80% of the captions whole from the image, the rest after a text prefix
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.8),
    ],
)
