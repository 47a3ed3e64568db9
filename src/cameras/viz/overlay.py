"""Saliency overlays on photos, with a label banner (PIL + a matplotlib colour map)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

__all__ = ["colorize", "label_banner", "overlay", "save_overlay"]


def colorize(saliency: NDArray[np.floating], cmap: str = "jet") -> NDArray[np.uint8]:
    """(H, W) map in [0, 1] → (H, W, 3) uint8 RGB through a matplotlib colour map."""
    from matplotlib import colormaps

    sal = np.clip(np.asarray(saliency, dtype=np.float32), 0.0, 1.0)
    rgba = colormaps[cmap](sal)
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def overlay(
    photo: NDArray[np.uint8], saliency: NDArray[np.floating], alpha: float = 0.5, cmap: str = "jet"
) -> NDArray[np.uint8]:
    """Blend a colour-mapped saliency map over a photo.

    Args:
        photo: (H, W, 3) uint8 RGB.
        saliency: (H, W) map in [0, 1], same size as the photo.
        alpha: weight of the colour map (0 = photo only, 1 = map only).
        cmap: matplotlib colour map name.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    if photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"photo must be (H, W, 3), got {photo.shape}.")
    if saliency.shape != photo.shape[:2]:
        raise ValueError(f"saliency {saliency.shape} and photo {photo.shape[:2]} must have the same size.")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    heat = colorize(saliency, cmap).astype(np.float32)
    out = (1.0 - alpha) * photo.astype(np.float32) + alpha * heat
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:  # pragma: no cover - matplotlib always ships DejaVu
        return ImageFont.load_default()


def label_banner(image: NDArray[np.uint8], text: str) -> NDArray[np.uint8]:
    """Draw ``text`` on a dark translucent banner along the top of ``image`` (size scales with the image)."""
    pil = Image.fromarray(image).convert("RGBA")
    size = max(12, round(min(pil.size) / 18))
    font = _font(size)
    layer = Image.new("RGBA", pil.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, _right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(4, size // 3)
    draw.rectangle((0, 0, pil.size[0], bottom - top + 2 * pad), fill=(0, 0, 0, 150))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(pil, layer).convert("RGB"))


def save_overlay(
    path: str | Path,
    photo: NDArray[np.uint8],
    saliency: NDArray[np.floating],
    label: str | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> Path:
    """Write ``overlay(photo, saliency)`` (with an optional label banner) as a PNG, atomically (missing folders are
    created); returns the path."""
    from ..io.atomic import write_image

    img = overlay(photo, saliency, alpha=alpha, cmap=cmap)
    if label:
        img = label_banner(img, label)
    return write_image(path, img)
