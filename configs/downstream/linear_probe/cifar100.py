# Linear probe on CIFAR-100: frozen DaVinci features, then a linear classifier
# (probe_base.py; docs/tasks/linear_probe.md). The dataset and its layout: the _base_ file.
#   python tools/probe_suite.py CHECKPOINT --tasks probe_cifar100 --out work_dirs/probes
_base_ = ['../../_base_/datasets/probes/cifar100.py', './probe_base.py']
