"""A grid planned into runs: grid YAML -> run configs (grid.py), model shapes solved for a target N (shapes.py),
the throughput model that prices a run on this machine (throughput.py), and the printed plan with its runs
balanced into jobs (plan.py). Nothing here trains."""
