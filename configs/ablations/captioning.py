# Objective mix: plain captioning (the whole caption written from the image, no text prefix).
#   python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations
_base_ = ['./_base_/pretrain_scenes32.py']

model = dict(
    objectives=[
        dict(type='Captioning', weight=1.0),  # write: image -> whole caption
    ],
)
