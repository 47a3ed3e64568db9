"""Pictures: overlays, grids and plots (matplotlib / PIL)."""

from .overlay import colorize, label_banner, overlay, save_overlay

__all__ = ["colorize", "label_banner", "overlay", "save_overlay"]
