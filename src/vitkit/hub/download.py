"""Fetching a tag's file into the local cache, through each ecosystem's own machinery:

- hub files through `huggingface_hub.hf_hub_download` (its cache under HF_HOME / HF_HUB_CACHE, resumable
  `.incomplete` downloads, a progress bar). HF_ENDPOINT (a mirror), HF_HUB_OFFLINE and the cache variables are
  read when a file is fetched, not when Python starts. A Git-LFS file's ETag is its sha256: the blob is checked
  against it and removed if it differs.
- URLs through `torch.hub.download_url_to_file` into `$TORCH_HOME/hub/checkpoints` (the cache of
  `torch.hub.load_state_dict_from_url`), checked against the sha256 prefix in the file name where the source
  publishes one (torchvision); torch.hub writes to a temporary file and moves it only when it is complete and
  its hash matches. VITKIT_WEIGHTS_MIRROR (or `mirror=`) serves those URLs from another base:
  `https://host/path` is fetched from `{mirror}/host/path`.

Every failure is a `WeightsError` with one sentence naming the tag and its source.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import CheckpointError
from .weights import Weights

MIRROR_ENV = "VITKIT_WEIGHTS_MIRROR"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WeightsError(CheckpointError):
    """Published weights that cannot be named, fetched or verified."""


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def fetch(weights: Weights, progress: bool = True, mirror: str | None = None) -> Path:
    """The local path of `weights`' file, downloaded into its ecosystem's cache if it is not there yet."""
    return _from_hub(weights) if weights.hub_repo else _from_url(weights, progress, mirror)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _from_hub(w: Weights) -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError as e:
        raise WeightsError(f"{w.tag} is on the Hugging Face hub and downloading it needs huggingface_hub "
                           "(pip install 'vitkit[hub]')") from e
    cache = os.environ.get("HF_HUB_CACHE") or (Path(os.environ["HF_HOME"]) / "hub" if "HF_HOME" in os.environ
                                               else None)
    try:
        path = Path(hf_hub_download(w.hub_repo, w.filename, cache_dir=cache, endpoint=os.environ.get("HF_ENDPOINT"),
                                    local_files_only=_offline()))
    except LocalEntryNotFoundError as e:
        why = "HF_HUB_OFFLINE is set" if _offline() else "the hub could not be reached"
        raise WeightsError(f"{w.tag}: {w.where} is not in the local cache and {why}; download it once online "
                           "(or set HF_ENDPOINT to a mirror)") from e
    except (EntryNotFoundError, RepositoryNotFoundError) as e:
        raise WeightsError(f"{w.tag}: {w.where} was not found on the hub "
                           f"({os.environ.get('HF_ENDPOINT') or 'huggingface.co'})") from e
    except Exception as e:  # HTTP errors, broken connections mid-download: the .incomplete file stays to resume
        raise WeightsError(f"{w.tag}: downloading {w.where} failed: {_reason(e)}") from e
    blob = path.resolve()
    if _SHA256.match(blob.name) and _sha256(blob) != blob.name:  # an LFS blob is named by its sha256 (the ETag)
        blob.unlink()
        path.unlink(missing_ok=True)
        raise WeightsError(f"{w.tag}: {w.where} does not match the sha256 the hub published for it ({blob.name[:12]}...)"
                           "; the corrupt copy was removed from the cache")
    return path


def mirrored(url: str, mirror: str | None = None) -> str:
    """`url` as served by the mirror (argument, else $VITKIT_WEIGHTS_MIRROR): {mirror}/{host}/{path}."""
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def _from_url(w: Weights, progress: bool, mirror: str | None) -> Path:
    import torch.hub

    name = Path(urlsplit(w.url).path).name
    target = Path(torch.hub.get_dir()) / "checkpoints" / name
    if target.is_file():
        return target
    if _offline():
        raise WeightsError(f"{w.tag}: {w.url} is not in the local cache ({target.parent}) and HF_HUB_OFFLINE is set; "
                           "download it once online (or set VITKIT_WEIGHTS_MIRROR)")
    url = mirrored(w.url, mirror)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=w.sha256, progress=progress)
    except RuntimeError as e:
        if "invalid hash" in str(e):
            raise WeightsError(f"{w.tag}: the file from {url} does not match its published sha256 prefix "
                               f"{w.sha256}; nothing was cached") from e
        raise WeightsError(f"{w.tag}: downloading {url} failed: {_reason(e)}") from e
    except Exception as e:  # urllib's URLError / HTTPError / OSError
        raise WeightsError(f"{w.tag}: downloading {url} failed: {_reason(e)}") from e
    return target


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
