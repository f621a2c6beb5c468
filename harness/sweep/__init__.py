"""Sweeps: a sweep directory and its submission through submitit (sweep.py), one executor per way of running
(executors.py: debug, local, slurm), the live progress view (progress.py) and the results table collected from
the run directories (results.py)."""
