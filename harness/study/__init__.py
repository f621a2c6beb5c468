"""Whole studies that loop over the stages below: the adaptive study (adaptive.py) runs a seed design, then
rounds of analysis.design's proposals -> sweep -> collect -> fit."""
