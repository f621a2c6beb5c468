"""The model under study: the SRT transformer (srt.py), its item feature extractors (features.py), training
losses (losses.py), learning-rate schedules (schedules.py), full-catalog evaluation (evaluate.py) and analytic
FLOPs and parameter counts (accounting.py)."""
