"""Where the metric networks' weight files are looked up, and how a report names them.

Nothing is downloaded: a file is taken from the explicit path, else from its environment
variable, else from `pretrained/<file name>` under the working directory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sgvideo.files import require_file


@dataclass(frozen=True)
class WeightFile:
    """A pretrained file a metric needs: its canonical name, env variable and origin."""

    what: str
    filename: str
    env: str
    source: str

    def resolve(self, path: str | os.PathLike | None = None) -> Path:
        """The file to load; FileNotFoundError naming it and where to put it when missing."""
        chosen = path or os.environ.get(self.env) or Path("pretrained") / self.filename
        hint = (
            f"Get {self.filename} ({self.source}) yourself and pass its path, set {self.env}, "
            f"or put it at pretrained/{self.filename}; sgvideo never downloads weights"
        )
        return require_file(chosen, self.what, hint)


FID_INCEPTION = WeightFile(
    what="FID Inception-v3 weights",
    filename="pt_inception-2015-12-05-6726825d.pth",
    env="SGVIDEO_FID_WEIGHTS",
    source="the pytorch-fid release 'fid_weights' on GitHub, mseitzer/pytorch-fid",
)

I3D_TORCHSCRIPT = WeightFile(
    what="FVD I3D TorchScript",
    filename="i3d_torchscript.pt",
    env="SGVIDEO_I3D_WEIGHTS",
    source="the file StyleGAN-V's FVD uses, linked from universome/stylegan-v",
)


def sha256_prefix(path: str | os.PathLike, length: int = 12) -> str:
    """First `length` hex digits of the file's SHA-256, to name exact weights in a report."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]
