"""Training settings as YAML files (`vitkit train --config FILE.yaml`, the shipped `recipes/`): every
TrainConfig field is a key (`batch_size` or `batch-size`), model overrides are a mapping under `overrides`.
An unknown key is one error listing the valid ones. The resolved settings of every run are saved as
`<out>/config.yaml` (train/run.py, through `io.write_yaml`), which `--resume` starts from."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..errors import ConfigError


def config_keys() -> list[str]:
    from .run import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig)]


def load_config(path: str | os.PathLike) -> dict:
    """The settings in a YAML file as {TrainConfig field: value}; ConfigError for a missing file, bad YAML, a
    non-mapping or an unknown key."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {str(p)!r} does not exist (expected a YAML file of training settings)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {str(p)!r} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {str(p)!r} must hold a mapping of settings, got a {type(data).__name__}")
    settings = {str(k).replace("-", "_"): v for k, v in data.items()}
    settings.pop("routes", None)  # what a run chose for its processor (train/run.py writes it): a record, not a setting
    valid = config_keys()
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ConfigError(f"--config {str(p)!r}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                          f"valid keys are {', '.join(valid)}")
    if not isinstance(settings.get("overrides", {}), dict):
        raise ConfigError(f"--config {str(p)!r}: overrides must be a mapping of model config keys to values")
    return settings
