"""TrainConfig is the one source of `vitkit train`'s settings: every field is a flag (or filled by named
hand-written flags), `--help` shows each default as the dataclass holds it (and follows when it changes), and the
YAML a run saves uses the field names and reads back into the same config."""

import dataclasses
import json
import re
import typing

import pytest

from vitkit.cli import build_parser, main, train_settings
from vitkit.train.config import TrainConfig, load_config, save_config

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
HINTS = typing.get_type_hints(TrainConfig)


def _kind(name: str):
    """The field's value type, `X | None` read as X."""
    hint = HINTS[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, type(int | None)) else hint


def _default(f):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _flag(f) -> str:
    """The documented spelling: --field-name, metadata `flag`, or --no-field-name for a switch on by default."""
    name = f.name.replace("_", "-")
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    return f"--no-{name}" if _default(f) is True and not f.metadata.get("negatable") else f"--{name}"


def _sample(f) -> tuple[list[str], object]:
    """(the flag and a value that is not the default, what the settings should then hold)."""
    kind, default = _kind(f.name), _default(f)
    if kind is bool:
        return [_flag(f)] if not f.metadata.get("negatable") else [f"--{f.name.replace('_', '-')}"], not default
    if "choices" in f.metadata:
        value = next(c for c in f.metadata["choices"] if c != default)
        return [_flag(f), value], value
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        return [_flag(f), "3,4"], (element(3), element(4))
    examples = {int: ("7", 7), float: ("0.375", 0.375), str: ("rand-m9-n2-mstd0.5-inc1", "rand-m9-n2-mstd0.5-inc1")
                if f.name == "randaugment" else ("4x3", "4x3") if f.name == "test_views" else ("some-value", "some-value")}
    text, value = examples[kind]
    return [_flag(f), text], value


def _settings(*argv: str) -> dict:
    return train_settings(build_parser().parse_args(["train", *argv]))


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if "via" not in f.metadata])
def test_every_field_is_a_flag(name):
    argv, expected = _sample(FIELDS[name])
    assert expected != _default(FIELDS[name])
    assert _settings(*argv)[name] == expected, argv


def test_the_fields_without_their_own_flag_are_filled_by_the_flags_they_name():
    via = {n: f.metadata["via"] for n, f in FIELDS.items() if "via" in f.metadata}
    assert via == {"overrides": ("--override", "--drop-path", "--img-size")}
    settings = _settings("--override", "depth=2", "--drop-path", "0.1", "--img-size", "32")
    assert settings["overrides"] == {"depth": 2, "drop_path_rate": 0.1, "img_size": 32}


def _help_lines(capsys) -> dict[str, str]:
    """{flag: its help} from `vitkit train --help` on a terminal wide enough that nothing wraps."""
    assert main(["train", "--help"]) == 0
    out, helps, flag = capsys.readouterr().out, {}, None
    for line in out.splitlines():
        m = re.match(r"^  (-[-\w]+)(?:,? [^ ]+)*?(?:  +(.*))?$", line)
        if m:
            flag = m.group(1)
            helps[flag] = m.group(2) or ""
        elif flag and line.startswith("    "):
            helps[flag] += " " + line.strip()
    return helps


def _check_help_defaults(cls, helps: dict[str, str]) -> int:
    """Every default of `cls` as its flag's help shows it; returns how many values were compared."""
    compared = 0
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "via" in f.metadata:
            continue
        text, default = helps[_flag(f)], _default(f)
        if hints[f.name] is bool or f.metadata.get("shown") is False:
            assert "(default" not in text, (f.name, text)  # a switch's default is its spelling (--x / --no-x)
        elif default in (None, ()):
            assert text.endswith(f"(default: {f.metadata['unset']})"), (f.name, text)
        else:
            shown = re.search(r"\(default ([^)]*)\)$", text)
            assert shown, (f.name, text)
            assert type(default)(shown.group(1)) == default, (f.name, text, default)
            compared += 1
    return compared


def test_help_shows_every_default_from_the_dataclass(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    assert _check_help_defaults(TrainConfig, _help_lines(capsys)) > 30


def test_help_follows_a_changed_default(capsys, monkeypatch):
    """Other defaults in a TrainConfig subclass: the same flags, and their help shows the new values."""
    monkeypatch.setenv("COLUMNS", "400")
    changed = {}
    for name, f in FIELDS.items():
        kind, default = _kind(name), _default(f)
        if "choices" in f.metadata:
            changed[name] = next(c for c in f.metadata["choices"] if c != default)
        elif kind in (int, float) and kind is not bool and default is not None:
            changed[name] = kind(default + 3)
    other = dataclasses.make_dataclass(
        "Other", [(n, HINTS[n], dataclasses.field(default=v, metadata=FIELDS[n].metadata)) for n, v in changed.items()],
        bases=(TrainConfig,), frozen=True)
    monkeypatch.setattr("vitkit.cli.config_flags.TrainConfig", other)
    helps = _help_lines(capsys)
    assert _check_help_defaults(other, helps) > 30
    assert helps["--epochs"] == f"(default {FIELDS['epochs'].default + 3})"


def test_no_default_is_written_into_a_help_text():
    """The help texts in the metadata say what a flag does; the default is added from the field."""
    written = {n: f.metadata["help"] for n, f in FIELDS.items() if "default" in f.metadata.get("help", "")}
    assert not written, written


def test_the_saved_yaml_uses_the_field_names_and_reads_back(tmp_path):
    import yaml

    cfg = TrainConfig(model="vit_tiny_patch16_224", overrides={"depth": 2}, epochs=3, decay_milestones=(1.0, 2.0),
                      scale_jitter=(8, 12), resume=True, log_interval=4)
    save_config(cfg, tmp_path / "config.yaml", routes={"linear": "blas"})
    keys = list(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert keys == [n for n in FIELDS if n not in ("resume", "force")] + ["routes"]
    loaded = TrainConfig(**load_config(tmp_path / "config.yaml"))
    as_json = lambda c: json.dumps(dataclasses.asdict(c), sort_keys=True)  # tuples come back as lists
    assert as_json(loaded) == as_json(dataclasses.replace(cfg, resume=False))


def test_log_interval_is_validated():
    from vitkit.errors import ConfigError

    with pytest.raises(ConfigError, match="--log-interval must be at least 1, got 0"):
        TrainConfig(log_interval=0).validate()
    assert _settings("--log-interval", "5")["log_interval"] == 5
