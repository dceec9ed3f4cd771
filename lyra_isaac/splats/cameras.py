"""Camera paths: Lyra's ``cameras.npz`` (and its trajectory variant) as one :class:`CameraPath`.

Conventions: ``w2c`` maps world (scene-frame) points to OpenCV camera coordinates (+X right, +Y down, +Z forward);
intrinsics are pixels with the principal point in pixels. The reader lives in this module too
(:func:`load_cameras`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np


@dataclass
class CameraPath:
    """A sequence of pinhole cameras.

    Attributes:
        w2c: (F, 4, 4) float64 world-to-camera transforms, OpenCV camera axes, scene units.
        intrinsics: (F, 3, 3) float64 pixel intrinsics (one per frame; a single shared matrix is broadcast).
        width, height: image size in pixels.
        source_path: the file read, if any.
    """

    w2c: np.ndarray
    intrinsics: np.ndarray
    width: int
    height: int
    source_path: Path | None = None

    def __post_init__(self) -> None:
        frames = self.w2c.shape[0]
        if self.w2c.ndim != 3 or self.w2c.shape[1:] != (4, 4):
            raise ValueError(f"CameraPath.w2c has shape {self.w2c.shape}, expected (F, 4, 4)")
        if self.intrinsics.shape == (3, 3):
            self.intrinsics = self.intrinsics[None]
        if self.intrinsics.ndim == 3 and self.intrinsics.shape[0] == 1 and frames > 1:
            self.intrinsics = np.repeat(self.intrinsics, frames, axis=0)
        if self.intrinsics.shape != (frames, 3, 3):
            raise ValueError(f"CameraPath.intrinsics has shape {self.intrinsics.shape}, expected ({frames}, 3, 3)")

    def __len__(self) -> int:
        return int(self.w2c.shape[0])

    def c2w(self) -> np.ndarray:
        """(F, 4, 4) camera-to-world transforms."""
        return np.linalg.inv(self.w2c)

    def centers(self) -> np.ndarray:
        """(F, 3) camera centres in the world frame."""
        return self.c2w()[:, :3, 3]

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World-frame unit axes of each camera: (right +X, down +Y, forward +Z), each (F, 3)."""
        rotation = self.c2w()[:, :3, :3]
        axes = [rotation[:, :, i] / np.linalg.norm(rotation[:, :, i], axis=1, keepdims=True) for i in range(3)]
        return axes[0], axes[1], axes[2]

    def up_vectors(self) -> np.ndarray:
        """(F, 3) camera up directions in the world frame (the -Y camera axis)."""
        return -self.axes()[1]

    def path_length(self) -> float:
        """Total length of the polyline through the camera centres, scene units."""
        centers = self.centers()
        return float(np.linalg.norm(np.diff(centers, axis=0), axis=1).sum()) if len(self) > 1 else 0.0

    def transformed(self, matrix: np.ndarray) -> CameraPath:
        """Cameras after the world moves by the similarity ``p' = M @ [p, 1]`` (M = s R | t).

        Camera centres move with M; orientations rotate by R; intrinsics are unchanged. The returned w2c is rigid
        (unit scale) in the new frame.
        """
        matrix = np.asarray(matrix, dtype=np.float64)
        scale = float(np.cbrt(np.linalg.det(matrix[:3, :3])))
        rotation = matrix[:3, :3] / scale
        c2w = self.c2w()
        new_c2w = np.tile(np.eye(4), (len(self), 1, 1))
        new_c2w[:, :3, :3] = rotation @ c2w[:, :3, :3]
        new_c2w[:, :3, 3] = c2w[:, :3, 3] @ matrix[:3, :3].T + matrix[:3, 3]
        return replace(self, w2c=np.linalg.inv(new_c2w))
