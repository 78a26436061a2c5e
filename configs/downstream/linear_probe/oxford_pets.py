# Linear probe on Oxford-IIIT Pets: frozen DaVinci features, then a linear classifier
# (probe_base.py; docs/tasks/linear_probe.md). The dataset and its layout: the _base_ file.
#   python tools/probe_suite.py CHECKPOINT --tasks probe_oxford_pets --out work_dirs/probes
_base_ = ['../../_base_/datasets/probes/oxford_pets.py', './probe_base.py']
