"""Read a Dockerfile's base images as a build without build arguments resolves them."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["base_images", "build_args"]


def build_args(path: Path) -> dict[str, str]:
    """The `ARG NAME=default` lines of a Dockerfile, as {NAME: default}."""
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)\s*$", path.read_text(encoding="utf-8"), re.M))


def base_images(path: Path) -> list[str]:
    """Each FROM's image, with `${ARG}` replaced by the ARG's default; stage names stay as they are."""
    defaults = build_args(path)
    froms = re.findall(r"^FROM\s+(\S+)", path.read_text(encoding="utf-8"), re.M)
    return [re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image) for image in froms]
