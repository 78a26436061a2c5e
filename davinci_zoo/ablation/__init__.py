"""The objective ablation: objective mixes x data scales, each cell pretrained and evaluated
by the plain tools (``tools/ablate.py``, docs/ablations.md).

- :mod:`.grid` reads a grid file (mixes, scales, the fixed evaluation);
- :mod:`.stages` builds a stage's commands and reads its result file;
- :mod:`.plan` turns a grid into cells and their stages;
- :mod:`.execute` runs a cell's stages, resumably;
- :mod:`.results` writes ``results.csv``, ``results.md`` and ``results.png``;
- :mod:`.heldout` scores a checkpoint's objectives on held-out data (a stage's tool).
"""
