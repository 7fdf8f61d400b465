"""video3d: 3D human pose from ordinary video.

Stages (each importable): ``video.read_frames`` -> ``pipeline.detect`` -> ``layouts.coco17_to_h36m17`` ->
``pipeline.lift`` -> ``pipeline.render`` / ``PoseResult.save_npz``; ``pipeline.reconstruct`` runs them all.
"""

__version__ = "0.1.0"

from .errors import Video3DError  # noqa: E402
from .sequence import PoseSequence  # noqa: E402

__all__ = ["PoseSequence", "Video3DError", "__version__"]
