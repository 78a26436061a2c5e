"""Linear probes on frozen features and the understanding-task suite (tools/probe_suite.py).

- :mod:`.sources`: features of a checkpoint's DaVinci, a random model, the tokenizer, pixels;
- :mod:`.extract` and :mod:`.cache`: features of a dataset split, computed once and cached;
- :mod:`.bn_linear` (the original's head) and :mod:`.logistic` (the CLIP paper's L-BFGS
  probe): classifiers on the cached features;
- :mod:`.probe_task`, :mod:`.glue_task`, :mod:`.tasks`, :mod:`.results`: the suite.

docs/tasks/linear_probe.md describes the commands and the decisions.
"""
