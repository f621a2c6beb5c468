import subprocess
import sys

import pytest

from harness.core import config
from harness.core.errors import UserError
from harness.run import identity


def test_defaults_resolve_and_every_key_documented():
    cfg = config.resolve({})
    assert set(cfg) == set(config.KEYS)
    assert all(k.doc for k in config.SCHEMA)
    assert all(f"`{k.name}`" in config.reference() for k in config.SCHEMA)


def test_unknown_key_in_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  d_model: 64\ntrain:\n  tokenz: 5\n")
    with pytest.raises(UserError, match=r"c\.yaml:4: unknown key 'train\.tokenz'"):
        config.load(p)


def test_bad_value_and_cross_key_rule(tmp_path):
    with pytest.raises(UserError, match=r"--set model.dropout=2: model.dropout = 2"):
        config.load(None, ["model.dropout=2"])
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  d_model: 64\n  n_heads: 3\n")
    with pytest.raises(UserError, match=r"c\.yaml:3: model.n_heads = 3 does not divide"):
        config.load(p)
    with pytest.raises(UserError, match="bce takes loss.negatives = 1"):
        config.resolve({"loss.kind": "bce", "loss.negatives": 8})


def test_set_values_parse_as_yaml():
    cfg = config.load(None, ["model.d_model=128", "loss.negatives=full", "eval.points=[0.5, 1.0]", "model.n_heads=4"])
    assert cfg["model.d_model"] == 128 and cfg["loss.negatives"] == "full" and cfg["eval.points"] == [0.5, 1.0]


def test_run_id_is_the_science_not_the_execution():
    a = config.resolve({})
    assert identity.run_id(a) == identity.run_id(config.resolve({}))
    assert identity.run_id(a) == identity.run_id(config.resolve({"train.threads": 2, "eval.batch_users": 7}))
    assert identity.run_id(a) != identity.run_id(config.resolve({"train.seed": 1}))


def test_one_number_one_id():
    """1 and 1.0 for a float key, or in a list of fractions of T, are one value: one run, one id."""
    base = config.resolve({})
    assert identity.run_id(config.resolve({"model.tau": 1})) == identity.run_id(config.resolve({"model.tau": 1.0}))
    assert identity.run_id(config.resolve({"model.tau": 1})) == identity.run_id(base)  # the default is 1.0
    same = [{"eval.points": [0.5, 1]}, {"eval.points": [0.5, 1.0]}]
    assert len({identity.run_id(config.resolve(o)) for o in same}) == 1
    assert config.resolve({"train.grad_clip": 2})["train.grad_clip"] == 2.0
    assert isinstance(config.resolve({"train.tokens": 1000})["train.tokens"], int)  # integer keys stay integers


def test_a_table_run_id_follows_the_file_not_its_name(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,timestamp\n1,1,1\n")
    cfg = config.resolve(
        {"data.name": "table", "data.path": str(path), "data.columns": {"user": "user", "item": "item"}}
    )
    before = identity.run_id(cfg)
    assert identity.run_id(cfg) == before
    path.write_text("user,item,timestamp\n1,2,1\n")  # edited in place: same name, other data
    assert identity.run_id(cfg) != before


def test_flatten_unflatten_roundtrip():
    cfg = config.resolve(
        {"data.columns": {"user": "u", "item": "i", "timestamp": "t"}, "data.name": "table", "data.path": "x.csv"}
    )
    assert config.flatten(config.unflatten(cfg)) == cfg


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "missing.yaml"], "missing.yaml: cannot read"),
        (["train", "configs/synthetic.yaml", "--set", "model.d_modl=3"], "unknown key 'model.d_modl'"),
        (["data", "prepare", "movielens", "--set", "data.path=/nonexistent"], "/nonexistent"),
    ],
)
def test_cli_user_errors_are_one_line_exit_2(args, message):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_every_command_has_help():
    commands = [["--help"], ["train", "--help"], ["data", "prepare", "--help"]] + [
        [c, "--help"] for c in ("plan", "sweep", "status", "collect", "fit", "plot", "report", "study")
    ]
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage: srt-scale" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "train", "--help"], capture_output=True, text=True)
    assert "model.d_model" in proc.stdout and "loss.negatives" in proc.stdout


def test_docs_carry_the_current_config_reference():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "config.md").read_text()
    assert config.reference() in text and config.reference(config.PROFILE) in text


def test_every_shipped_profile_loads_and_gives_every_key(tmp_path):
    from pathlib import Path

    from harness.sweep import sweep

    profiles = sorted((Path(__file__).parent.parent / "slurm").glob("*.yaml"))
    assert len(profiles) >= 2
    for path in profiles:
        assert set(config.load_yaml(path)) == set(config.PROFILE_KEYS), path
        assert sweep.load_profile(path)["cpus_per_task"] >= 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus_per_node: -1\n")
    with pytest.raises(UserError, match=r"bad.yaml: gpus_per_node = -1: expected an integer >= 0"):
        sweep.load_profile(bad)


def test_nothing_in_the_repository_points_outside_it():
    import subprocess
    from pathlib import Path

    root = Path(__file__).parent.parent
    files = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True).stdout.split()
    outside = [
        f
        for f in files
        if f.endswith((".py", ".md", ".yaml", ".sh", ".toml", "Makefile"))
        and "../" + "shared" in (root / f).read_text(errors="replace")
    ]
    assert outside == [], outside
