# Objective mix: prefix image modelling only (paints, never writes).
#   python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations
_base_ = ['./_base_/pretrain_scenes32.py']

model = dict(
    objectives=[
        # paint: text-to-image codes (static), 15% of the painter's input codes noised
        dict(type='PrefixImage', weight=1.0, mode='static', input_noise=0.15),
    ],
)
