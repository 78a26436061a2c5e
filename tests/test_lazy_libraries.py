"""torchmetrics, webdataset and open_clip (with timm) load on first use, not with the
components that use them: listing every component, plugins included, imports none of them."""

import subprocess
import sys

LIBRARIES = ('torchmetrics', 'webdataset', 'open_clip', 'timm', 'torchvision')
PROBE = f"""
import sys, davinci_zoo
names = {{c.name for c in davinci_zoo.list_components()}}
assert {{'WebDatasetShards', 'ResNetImageEmbedder', 'ReconstructionMetric', 'CLIPScorer'}} <= names
print(sorted(m for m in {LIBRARIES!r} if m in sys.modules))
"""


def test_listing_every_component_imports_none_of_the_libraries():
    result = subprocess.run(
        [sys.executable, '-c', PROBE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split('\n')[-2] == '[]'
