# Linear probe on the scene classification set (two shapes and their relation, on this CPU):
# frozen DaVinci features, then a linear classifier (probe_base.py; docs/tasks/linear_probe.md).
# The data:
#   python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 --tasks classification
# The probe, with the baselines of the scene table:
#   python tools/probe_suite.py work_dirs/quickstart/davinci/iter_700.pth \
#       --tasks probe_scenes_shapes --baselines random,tokenizer,pixels --out work_dirs/probes
_base_ = ['../../_base_/datasets/probes/scenes_shapes.py', './probe_base.py']

# 5,000 training images are 20 steps an epoch: at the original's lr (6e-4, set for ImageNet's
# 5,000 steps an epoch) the head ends under-trained (docs/tasks/linear_probe.md)
probe = dict(bn_linear=dict(lr=1e-2))
