# Objective mix: captioning + BEiT-style masked image modelling (writes, never paints).
#   python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations
_base_ = ['./_base_/pretrain_scenes32.py']

model = dict(
    objectives=[
        dict(type='Captioning', weight=1.0),  # write: image -> whole caption
        # ~40% of the image patches masked block-wise; their codes predicted (caption as context)
        dict(type='MaskedImageModeling', weight=1.0, name='mim', mask_ratio=0.4),
    ],
)
