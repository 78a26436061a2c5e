# Linear probe on FGVC Aircraft: frozen DaVinci features, then a linear classifier
# (probe_base.py; docs/tasks/linear_probe.md). The dataset and its layout: the _base_ file.
#   python tools/probe_suite.py CHECKPOINT --tasks probe_fgvc_aircraft --out work_dirs/probes
_base_ = ['../../_base_/datasets/probes/fgvc_aircraft.py', './probe_base.py']
