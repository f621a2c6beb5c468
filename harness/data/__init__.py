"""Datasets: sources (synthetic world, file readers), preparation into the canonical form, augmentation."""
