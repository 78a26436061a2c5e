# Linear probe on Country211: frozen DaVinci features, then a linear classifier
# (probe_base.py; docs/tasks/linear_probe.md). The dataset and its layout: the _base_ file.
#   python tools/probe_suite.py CHECKPOINT --tasks probe_country211 --out work_dirs/probes
_base_ = ['../../_base_/datasets/probes/country211.py', './probe_base.py']
