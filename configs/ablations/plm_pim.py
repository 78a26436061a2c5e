# Objective mix: prefix LM + prefix image modelling, the quick start's (and the paper's) pair.
#   python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations
_base_ = ['./_base_/pretrain_scenes32.py']

model = dict(
    objectives=[
        # write: 80% of the captions whole from the image, the rest after a text prefix
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.8),
        # paint: text-to-image codes (static), 15% of the painter's input codes noised
        dict(type='PrefixImage', weight=1.0, mode='static', input_noise=0.15),
    ],
)
