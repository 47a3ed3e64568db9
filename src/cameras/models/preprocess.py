"""Photo → model input, and model-input maps/boxes → photo pixels.

The preprocessing is a plain resize (no crop), so the two frames differ only by a per-axis scale factor: a point
``(x, y)`` of the photo (continuous pixel-edge coordinates, the convention of ``align_corners=False``) sits at
``(x · w / W0, y · h / H0)`` of the input. Saliency maps are brought back with a bilinear resize and boxes with that
pure scaling, so nothing is lost at the borders.

Two resize modes:

* aspect-preserving (default): the shorter side becomes ``size`` (the model's native resolution), the longer side
  ``round(long · size / short)``; a 300×451 photo becomes 224×337 for a 224 px model;
* ``square=True`` (the CAMERAS paper's setting, Jalwana et al., CVPR 2021): the photo is stretched to size×size.

The resize is bilinear with antialiasing (a triangle filter widened by the downscale factor, as PIL and torchvision's
``antialias=True`` do), applied to the 0–255 values; ``interpolation="bicubic"`` (timm's usual setting) uses the
antialiased bicubic filter instead, clamped to 0–255, and ``"nearest"`` picks pixels. Normalisation is
``(x / 255 − mean) / std`` per channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from ..io import SizeLimits

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INTERPOLATIONS",
    "ImageLike",
    "PreparedImage",
    "Preprocess",
    "read_rgb",
    "resize_map",
    "scale_box",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel mean of ImageNet photos in [0, 1] units (torchvision's normalisation)."""
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel standard deviation of ImageNet photos in [0, 1] units (torchvision's normalisation)."""

ImageLike = Any
"""A path (``str`` / ``os.PathLike``), a bundled photo name, a ``PIL.Image.Image``, or an H×W, H×W×1, H×W×3 or
H×W×4 numpy array (``uint8``, ``uint16``, ``bool``, or floating point in [0, 1]); see :func:`cameras.io.load_image`."""

INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "nearest")
"""The resize filters :class:`Preprocess` takes."""

BoxT = TypeVar("BoxT", np.ndarray, Tensor)


def read_rgb(image: ImageLike) -> np.ndarray:
    """Read an image into an H×W×3 ``uint8`` RGB array with the package's one loader, :func:`cameras.io.load_image`.

    Every format Pillow reads; grayscale is repeated over 3 channels; palette / CMYK / other modes are converted to
    RGB; 16-bit and float images are scaled to 8 bits by their mode's range; alpha is composited over white; the
    EXIF orientation is applied (the array is the photo as displayed); animated files give their first frame;
    bundled photo names (``"chelsea"``) are accepted. Float arrays must lie in [0, 1] and are scaled by 255 and
    rounded. See :mod:`cameras.io.images` for every rule.

    Args:
        image: a path, a bundled photo name, a ``PIL.Image.Image`` or a numpy array (H×W, H×W×1, H×W×3 or H×W×4).

    Returns:
        (H, W, 3) ``uint8`` array (a new array; the input is never modified).

    Raises:
        FileNotFoundError: the path does not exist (:class:`cameras.io.ImageNotFoundError`).
        ValueError: the file is not a usable image, or the array has an unsupported shape or value range
            (:class:`cameras.io.ImageError`).
        TypeError: an unsupported type or dtype.

    Example:
        >>> import numpy as np
        >>> read_rgb(np.zeros((4, 5), dtype=np.uint8)).shape
        (4, 5, 3)
    """
    from ..io import load_image

    return load_image(image).rgb


def resize_map(saliency: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize (h, w), (B, h, w) or (B, K, h, w) maps to ``size``: bilinear, ``align_corners=False``, clamped to [0, 1].

    Args:
        saliency: maps with the two spatial dimensions last.
        size: target (H, W).

    Returns:
        float maps of shape (..., H, W) on the input's device, values in [0, 1].

    Example:
        >>> resize_map(torch.ones(2, 4, 4), (3, 5)).shape
        torch.Size([2, 3, 5])
    """
    if not isinstance(saliency, Tensor):
        raise TypeError(f"Expected a torch.Tensor map, got {type(saliency).__name__}.")
    if saliency.dim() < 2 or saliency.dim() > 4:
        raise ValueError(f"Expected a map of shape (h, w), (B, h, w) or (B, K, h, w), got {tuple(saliency.shape)}.")
    lead = saliency.shape[:-2]
    x = saliency.reshape(1, -1, *saliency.shape[-2:])
    if not x.is_floating_point():
        x = x.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return x.clamp(0.0, 1.0).reshape(*lead, *size)


@overload
def scale_box(
    box: Sequence[float], from_size: tuple[int, int], to_size: tuple[int, int]
) -> tuple[float, float, float, float]: ...
@overload
def scale_box(box: BoxT, from_size: tuple[int, int], to_size: tuple[int, int]) -> BoxT: ...
def scale_box(box: Any, from_size: tuple[int, int], to_size: tuple[int, int]) -> Any:
    """Map (x0, y0, x1, y1) boxes from an image of size ``from_size`` = (H, W) to a resize of it of size ``to_size``.

    x coordinates are multiplied by ``to_W / from_W`` and y coordinates by ``to_H / from_H`` (pixel-edge coordinates,
    so a box covering the whole image maps to the whole image).

    Args:
        box: 4 numbers, or an array/tensor of shape (..., 4).
        from_size: (H, W) of the frame the box is in.
        to_size: (H, W) of the frame to map to.

    Returns:
        a tuple of 4 floats for a sequence input, else an array/tensor of the input's kind and shape (float).

    Example:
        >>> scale_box((45, 30, 450, 300), (300, 450), (224, 336))
        (33.6, 22.4, 336.0, 224.0)
    """
    fh, fw = float(from_size[0]), float(from_size[1])
    th, tw = float(to_size[0]), float(to_size[1])
    if min(fh, fw, th, tw) <= 0:
        raise ValueError(f"Sizes must be positive, got {from_size} → {to_size}.")
    # (v · to) / from: one rounding per step, so exact ratios such as 30 · 224 / 300 = 22.4 come out exactly
    if isinstance(box, Tensor):
        if box.shape[-1:] != (4,):
            raise ValueError(f"Expected boxes of shape (..., 4), got {tuple(box.shape)}.")
        num = torch.tensor([tw, th, tw, th], dtype=torch.float64, device=box.device)
        den = torch.tensor([fw, fh, fw, fh], dtype=torch.float64, device=box.device)
        dtype = box.dtype if box.is_floating_point() else torch.float32
        return (box.to(torch.float64) * num / den).to(dtype)
    if isinstance(box, np.ndarray):
        if box.shape[-1:] != (4,):
            raise ValueError(f"Expected boxes of shape (..., 4), got {box.shape}.")
        out: np.ndarray = box.astype(np.float64) * np.array([tw, th, tw, th]) / np.array([fw, fh, fw, fh])
        return out
    values = [float(v) for v in box]
    if len(values) != 4:
        raise ValueError(f"Expected a box (x0, y0, x1, y1), got {len(values)} numbers.")
    x0, y0, x1, y1 = values
    return (x0 * tw / fw, y0 * th / fh, x1 * tw / fw, y1 * th / fh)


@dataclass(frozen=True)
class PreparedImage:
    """A photo ready for the model, with what is needed to map results back onto it.

    Attributes:
        tensor: (1, 3, h, w) float32 normalised input.
        original_rgb: (H0, W0, 3) uint8 photo as read (for display and overlays).
        original_size: (H0, W0).
        input_size: (h, w).
        name: short name of the photo (file stem, bundled photo name, or ``"image"``; see :class:`cameras.io.Photo`).
        notes: what the loader did beyond decoding (alpha composited, 16-bit scaled, EXIF orientation applied, …).
    """

    tensor: Tensor
    original_rgb: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    name: str = "image"
    notes: tuple[str, ...] = ()

    def to_original(self, saliency: Tensor) -> Tensor:
        """Resize input-frame maps (h, w), (B, h, w) or (B, K, h, w) to the photo's (H0, W0); see :func:`resize_map`."""
        return resize_map(saliency, self.original_size)

    @overload
    def box_to_input(self, box: Sequence[float]) -> tuple[float, float, float, float]: ...
    @overload
    def box_to_input(self, box: BoxT) -> BoxT: ...
    def box_to_input(self, box: Any) -> Any:
        """Map (x0, y0, x1, y1) box(es) from photo pixels to input pixels; see :func:`scale_box`."""
        return scale_box(box, self.original_size, self.input_size)

    @overload
    def box_to_original(self, box: Sequence[float]) -> tuple[float, float, float, float]: ...
    @overload
    def box_to_original(self, box: BoxT) -> BoxT: ...
    def box_to_original(self, box: Any) -> Any:
        """Map (x0, y0, x1, y1) box(es) from input pixels to photo pixels; see :func:`scale_box`."""
        return scale_box(box, self.input_size, self.original_size)


@dataclass(frozen=True)
class Preprocess:
    """Resize a photo for a classifier (no crop) and normalise it; map maps and boxes back.

    Args:
        size: native resolution of the model: the shorter side (or both sides with ``square=True``) after resizing.
        mean: per-channel mean in [0, 1] units (ImageNet's by default).
        std: per-channel standard deviation in [0, 1] units.
        square: resize to size×size (the CAMERAS paper's setting) instead of keeping the aspect ratio.
        max_size: optional cap on the longer side in aspect-preserving mode (for very elongated photos, whose longer
            side would otherwise grow without bound); when it binds, the longer side becomes ``max_size`` and the
            shorter side is smaller than ``size``. ``None`` (default): no cap.
        interpolation: the resize filter: ``"bilinear"`` (default), ``"bicubic"`` (both antialiased) or
            ``"nearest"`` (:func:`cameras.models.load` takes timm models' from their data config).
        limits: the size bounds applied by every call (:class:`cameras.io.SizeLimits`; ``None``:
            :data:`cameras.io.DEFAULT_LIMITS`); a call's own ``limits=`` overrides them.

    Calling it on an image returns a :class:`PreparedImage` whose ``tensor`` is (1, 3, h, w).

    Example:
        >>> import numpy as np
        >>> prep = Preprocess(size=224)
        >>> p = prep(np.zeros((300, 451, 3), dtype=np.uint8))
        >>> p.tensor.shape, p.original_size, p.input_size
        (torch.Size([1, 3, 224, 337]), (300, 451), (224, 337))
        >>> Preprocess(size=224, square=True).input_size_for((300, 451))
        (224, 224)
    """

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    square: bool = False
    max_size: int | None = None
    interpolation: str = "bilinear"
    limits: SizeLimits | None = None

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(map(repr, INTERPOLATIONS))}, got {self.interpolation!r}."
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive int, got {self.size!r}.")
        if self.max_size is not None and (
            isinstance(self.max_size, bool) or not isinstance(self.max_size, int) or self.max_size < self.size
        ):
            raise ValueError(f"max_size must be None or an int ≥ size ({self.size}), got {self.max_size!r}.")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std must have 3 values (R, G, B).")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}.")

    def input_size_for(self, original_size: tuple[int, int], *, square: bool | None = None) -> tuple[int, int]:
        """The (h, w) model-input size of a photo of (H0, W0) pixels.

        Args:
            original_size: (H0, W0).
            square: override this object's ``square``.

        Returns:
            (size, size) in square mode; otherwise the shorter side becomes ``size`` and the longer side
            ``round(long · size / short)``; with ``max_size`` binding, the longer side becomes ``max_size`` and the
            shorter ``round(short · max_size / long)`` (each side at least 1).
        """
        h0, w0 = (int(v) for v in original_size)
        if h0 < 1 or w0 < 1:
            raise ValueError(f"original_size must be positive, got {original_size}.")
        if self.square if square is None else square:
            return (self.size, self.size)
        scale = self.size / min(h0, w0)
        if self.max_size is not None and round(max(h0, w0) * scale) > self.max_size:
            scale = self.max_size / max(h0, w0)
        return (max(1, round(h0 * scale)), max(1, round(w0 * scale)))

    def __call__(
        self,
        image: ImageLike,
        *,
        square: bool | None = None,
        device: torch.device | str | None = None,
        limits: SizeLimits | None = None,
    ) -> PreparedImage:
        """Read, resize and normalise one image.

        Args:
            image: a path, bundled photo name, PIL image, or numpy array (see :func:`cameras.io.load_image`).
            square: override this object's ``square`` for this call.
            device: where to put the tensor (default CPU).
            limits: size bounds (:class:`cameras.io.SizeLimits`; default: this object's ``limits``, else
                :data:`cameras.io.DEFAULT_LIMITS`): the photo's pixels, and the longer side and pixels of the model
                input, checked before anything is resized.

        Returns:
            :class:`PreparedImage` with ``tensor`` (1, 3, h, w) float32.

        Raises:
            cameras.io.ImageError: an unusable image; :class:`cameras.io.SizeLimitError` when over a bound.
        """
        from ..io import DEFAULT_LIMITS, load_image

        lim = limits or self.limits or DEFAULT_LIMITS
        photo = load_image(image, limits=lim)
        rgb = photo.rgb
        original_size = photo.size
        input_size = self.input_size_for(original_size, square=square)
        lim.check_input(original_size, input_size, photo.name)
        x = torch.from_numpy(rgb).to(device=device).permute(2, 0, 1).unsqueeze(0).float()
        if input_size != original_size:
            if self.interpolation == "nearest":
                x = F.interpolate(x, size=input_size, mode="nearest-exact")
            else:
                x = F.interpolate(x, size=input_size, mode=self.interpolation, align_corners=False, antialias=True)
                if self.interpolation == "bicubic":
                    x = x.clamp(0.0, 255.0)  # the cubic kernel overshoots at edges; PIL clamps the same way
        x = self.normalize(x / 255.0)
        return PreparedImage(
            tensor=x.contiguous(),
            original_rgb=rgb,
            original_size=original_size,
            input_size=input_size,
            name=photo.name,
            notes=photo.notes,
        )

    def normalize(self, x: Tensor) -> Tensor:
        """(x − mean) / std per channel, for (B, 3, h, w) or (3, h, w) images in [0, 1]."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, tensor: Tensor) -> np.ndarray:
        """Undo the normalisation of one image for display.

        Args:
            tensor: (3, h, w) or (1, 3, h, w) normalised input.

        Returns:
            (h, w, 3) uint8 array (values rounded and clipped to 0..255).

        Example:
            >>> import numpy as np
            >>> prep = Preprocess(size=4)
            >>> img = (np.arange(48).reshape(4, 4, 3) * 5).astype(np.uint8)
            >>> bool((prep.denormalize(prep(img).tensor) == img).all())
            True
        """
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Expected a torch.Tensor, got {type(tensor).__name__}.")
        if tensor.dim() == 4:
            if tensor.shape[0] != 1:
                raise ValueError(f"denormalize takes one image; got a batch of {tensor.shape[0]} (index it first).")
            tensor = tensor[0]
        if tensor.dim() != 3 or tensor.shape[0] != 3:
            raise ValueError(f"Expected a (3, h, w) or (1, 3, h, w) tensor, got {tuple(tensor.shape)}.")
        mean, std = self._stats(tensor)
        x = (tensor.detach().float() * std + mean) * 255.0
        arr: np.ndarray = x.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return arr

    def to_original(self, saliency: Tensor, original_size: tuple[int, int]) -> Tensor:
        """Resize input-frame maps (h, w), (B, h, w) or (B, K, h, w) to the photo's ``original_size`` = (H0, W0).

        Bilinear, ``align_corners=False``, clamped to [0, 1]; see :func:`resize_map`.
        """
        return resize_map(saliency, (int(original_size[0]), int(original_size[1])))

    def box_to_input(self, box: Any, *, original_size: tuple[int, int], square: bool | None = None) -> Any:
        """Map (x0, y0, x1, y1) box(es) from the pixels of a photo of ``original_size`` to the model input.

        Args:
            box: 4 numbers, or an array/tensor (..., 4).
            original_size: (H0, W0) of the photo.
            square: override this object's ``square``.

        Returns:
            the box(es) in input pixels (tuple for a sequence input); see :func:`scale_box`.
        """
        return scale_box(box, original_size, self.input_size_for(original_size, square=square))

    def box_to_original(self, box: Any, *, original_size: tuple[int, int], square: bool | None = None) -> Any:
        """Inverse of :meth:`box_to_input`: from model-input pixels back to the photo's pixels."""
        return scale_box(box, self.input_size_for(original_size, square=square), original_size)

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shape = (3, 1, 1)
        dtype = x.dtype if x.is_floating_point() else torch.float32
        mean = torch.tensor(self.mean, dtype=dtype, device=x.device).reshape(shape)
        std = torch.tensor(self.std, dtype=dtype, device=x.device).reshape(shape)
        return mean, std
