"""Datasets: procedural scenes, image folders, (later) image-text corpora and task datasets."""
