"""Datasets: sources (synthetic world, file readers), preparation into the canonical form, augmentation, and the
frozen text encoder that embeds item texts (text.py)."""
