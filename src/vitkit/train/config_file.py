"""Settings files moved to `train/config.py`, beside `TrainConfig`; these names stay importable from here."""

from .config import config_keys, load_config, save_config

__all__ = ["config_keys", "load_config", "save_config"]
