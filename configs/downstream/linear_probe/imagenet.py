# Linear probe on ImageNet-1k: frozen DaVinci features, then a linear classifier
# (probe_base.py; docs/tasks/linear_probe.md). The dataset and its layout: the _base_ file.
#   python tools/probe_suite.py CHECKPOINT --tasks probe_imagenet --out work_dirs/probes
_base_ = ['../../_base_/datasets/probes/imagenet.py', './probe_base.py']

# 1.28 M training images: extract in bigger batches with worker processes (a GPU machine)
probe = dict(batch_size=256, num_workers=8)
