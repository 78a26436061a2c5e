"""Speed measurements behind ``tools/benchmark.py`` (JSON results, ratios within one run)."""
