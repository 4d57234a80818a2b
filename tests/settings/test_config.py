import dataclasses
import re
import textwrap

import pytest

from cycle_pkg.cli import main
from cycle_pkg.errors import ConfigError
from cycle_pkg.settings.config import Config, config_from_dict, json_schema, load_config
from cycle_pkg.settings.facts import SETTING_FACTS
from cycle_pkg.settings.identity import affects_training
from cycle_pkg.settings.ranges import RANGES
from cycle_pkg.settings.sections import GridConfig
from cycle_pkg.settings.typed_yaml import flatten, get_setting, load_yaml, load_yaml_file

from ..helpers import PARAMS


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_layers_apply_in_order():
    config = load_config(PARAMS, "test", ["loss.lambda_cycle=0.3", "loss.topk=null"])
    assert config.scale == "test"
    assert config.pretrain.batch_size == 16  # from scales.test
    assert config.model.momentum == 0.99  # scale refines the top-level value
    assert config.loss.lambda_cycle == 0.3  # override
    assert config.loss.temperature == 0.07  # top level
    assert config.pretrain.weight_decay == 1e-4  # package default


def test_paper_scale_has_the_papers_settings():
    config = load_config(PARAMS, "paper")
    assert (config.model.intra_queue, config.model.cycle_queue, config.loss.neighbors) == (65536, 81920, 16384)
    assert (config.pretrain.batch_size, config.pretrain.lr, config.pretrain.epochs) == (256, 0.06, 200)
    assert (config.model.momentum, config.loss.temperature, config.loss.lambda_cycle) == (0.999, 0.07, 0.1)
    assert config.model.head == "linear" and config.model.embed_dim == 64


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "scale: s\npretrain:\n  bach_size: 3\nscales:\n  s: {}\n")
    with pytest.raises(ConfigError, match=r"pretrain\.bach_size: unknown setting .*batch_size"):
        load_config(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "scale: s\nscales:\n  s:\n    pretrain: {batch_size: big}\n")
    with pytest.raises(ConfigError, match=r"scales\.s\.pretrain\.batch_size: expected an integer, got 'big'"):
        load_config(path)


def test_bool_is_not_an_integer_and_int_is_a_float():
    with pytest.raises(ConfigError, match="pretrain.epochs: expected an integer"):
        load_config(PARAMS, "test", ["pretrain.epochs=true"])
    assert load_config(PARAMS, "test", ["loss.lambda_cycle=1"]).loss.lambda_cycle == 1.0


def test_a_tracking_subset_needs_frames_to_track_and_a_target():
    with pytest.raises(ConfigError, match=r"eval.track.max_frames \(1\) must be >= 2"):
        load_config(PARAMS, "test", ["eval.track.max_frames=1"])
    with pytest.raises(ConfigError, match=r"eval.track.max_sequences \(0\) must be >= 1"):
        load_config(PARAMS, "test", ["eval.track.max_sequences=0"])
    assert load_config(PARAMS, "test", ["eval.track.max_sequences=null"]).eval.track.max_sequences is None


def test_choice_lists_the_allowed_values():
    with pytest.raises(ConfigError, match="loss.components: 'cycles' is not one of .*'intra_video\\+cycle'"):
        load_config(PARAMS, "test", ["loss.components=cycles"])


def test_unknown_scale_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="scale 'huge' is not defined"):
        load_config(PARAMS, "huge")
    with pytest.raises(ConfigError, match="parameter file not found"):
        load_config(tmp_path / "nope.yaml")


def test_queue_must_hold_whole_batches():
    with pytest.raises(ConfigError, match=r"model.intra_queue \(64\) must be divisible by .*batch_size \(24\)"):
        load_config(PARAMS, "test", ["pretrain.batch_size=24"])


def test_neighbors_leave_negatives_and_topk_fits():
    with pytest.raises(ConfigError, match="loss.neighbors .* smaller than model.cycle_queue"):
        load_config(PARAMS, "test", ["loss.neighbors=96"])
    with pytest.raises(ConfigError, match=r"loss.topk \(65\) must lie in \[1, loss.neighbors=64\]"):
        load_config(PARAMS, "test", ["loss.topk=65"])


def test_monitor_settings_are_checked():
    with pytest.raises(ConfigError, match=r"pretrain.monitor_every \(-1\) must be >= 0"):
        load_config(PARAMS, "test", ["pretrain.monitor_every=-1"])
    with pytest.raises(ConfigError, match=r"pretrain.monitor.k \(0\) must be >= 1"):
        load_config(PARAMS, "test", ["pretrain.monitor.k=0"])
    with pytest.raises(ConfigError, match=r"pretrain.monitor.temperature \(0.0\) must be > 0"):
        load_config(PARAMS, "test", ["pretrain.monitor.temperature=0.0"])


def test_override_needs_key_and_value():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(PARAMS, "test", ["loss.lambda_cycle"])


def test_round_trip_through_a_dict():
    config = load_config(PARAMS, "test", ["loss.topk=8"])
    assert config_from_dict(config.to_dict()) == config


def test_flatten_joins_nested_keys():
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": "x"}) == {"a.b": 1, "a.c.d": None, "e": "x"}


def test_every_setting_fact_names_a_setting_or_a_section():
    defaults = Config()
    for facts in SETTING_FACTS:
        value = get_setting(defaults, facts.key.removesuffix("."))  # AttributeError: no such setting
        assert facts.key.endswith(".") == (isinstance(value, dict) or dataclasses.is_dataclass(value)), facts.key
        assert facts.grid_map is None or facts.grid_map in GridConfig.__dataclass_fields__, facts.key


def test_a_resumed_run_may_change_how_it_runs_but_not_what_it_computes():
    assert not any(affects_training(key) for key in ("pretrain.workers", "data.ucf101_root", "eval.linear.lr", "scale"))
    assert not any(affects_training(key) for key in ("pretrain.monitor_every", "pretrain.monitor.k"))  # it only looks
    assert all(affects_training(key) for key in ("pretrain.lr", "data.r2v2_split", "data.r2v2_subset", "loss.topk"))


def test_params_read_by_libyaml_as_by_pyyaml():
    import yaml

    text = open(PARAMS).read()
    assert load_yaml(text) == yaml.safe_load(text)
    assert load_yaml("a: [1, 1e-4, .inf, yes, ~, '0.3']") == yaml.safe_load("a: [1, 1e-4, .inf, yes, ~, '0.3']")


def test_a_parameter_file_is_reread_when_it_changes(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("loss:\n  lambda_cycle: 0.1\nscales:\n  test: {}\n")
    first = load_config(path, "test")
    load_yaml_file(path)["loss"]["lambda_cycle"] = 9.0  # a caller's copy: the cached value stays
    assert load_config(path, "test").loss.lambda_cycle == first.loss.lambda_cycle == 0.1
    path.write_text("loss:\n  lambda_cycle: 0.3\nscales:\n  test: {}\n")  # same size, same instant
    assert load_config(path, "test").loss.lambda_cycle == 0.3


BAD_NUMBERS = [
    ("pretrain.lr=-0.5", r"pretrain.lr \(-0.5\) must be > 0"),
    ("pretrain.lr=0", r"pretrain.lr \(0.0\) must be > 0"),
    ("pretrain.seed=-1", r"pretrain.seed \(-1\) must be >= 0"),
    ("workflow.seeds=[-1]", r"workflow.seeds \(\[-1\]\) must be >= 0 \(each of them\)"),
    ("pretrain.checkpoint_every=0", r"pretrain.checkpoint_every \(0\) must be >= 1"),
    ("pretrain.max_steps=0", r"pretrain.max_steps \(0\) must be >= 1"),
    ("eval.linear.lr=-1", r"eval.linear.lr \(-1.0\) must be > 0"),
    ("eval.finetune.lr=0", r"eval.finetune.lr \(0.0\) must be > 0"),  # a subclass's settings inherit the ranges
    ("model.bn_momentum=1.5", r"model.bn_momentum \(1.5\) must be in \(0, 1\]"),
    ("workflow.tables=[table12]", r"workflow.tables: unknown tables \['table12'\]"),
]


@pytest.mark.parametrize(("override", "message"), BAD_NUMBERS, ids=[o for o, _ in BAD_NUMBERS])
def test_a_number_out_of_its_range_is_refused_naming_the_key(override, message, capsys):
    """`cycle config` refuses it (as every command does) instead of a job failing after loading its data."""
    assert main(["config", "--params", str(PARAMS), "--scale", "test", "--set", override]) == 2
    assert re.search(f"configuration error: {message}", capsys.readouterr().err)


def test_the_schema_bounds_the_numbers_as_the_checks_do():
    """The JSON schema that the workflow validates params.yaml against has the same ranges."""
    schema = json_schema()["properties"]
    assert schema["pretrain"]["properties"]["lr"] == {"type": "number", "exclusiveMinimum": 0}
    assert schema["workflow"]["properties"]["seeds"]["items"] == {"type": "integer", "minimum": 0}
    assert {"type": "integer", "minimum": 1} in schema["pretrain"]["properties"]["max_steps"]["anyOf"]
    assert schema["eval"]["properties"]["finetune"]["properties"]["lr"]["exclusiveMinimum"] == 0
    assert all(dataclasses.is_dataclass(cls) for cls in RANGES)
