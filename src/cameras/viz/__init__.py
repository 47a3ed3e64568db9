"""Pictures: overlays, grids and plots (matplotlib / PIL); :func:`show` draws maps side by side in a notebook."""

from .overlay import colorize, label_banner, overlay, save_overlay
from .show import show

__all__ = ["colorize", "label_banner", "overlay", "save_overlay", "show"]
