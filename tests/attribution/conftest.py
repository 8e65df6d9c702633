import pytest

from attribution.paths import PathCounts


@pytest.fixture
def tiny_paths() -> PathCounts:
    """Four paths, three conversions worth 60 (the examples worked by hand in the tests).

    a > b       1 conversion worth 10, 0 nulls
    b           1 conversion worth 20, 1 null
    a           0 conversions,         1 null
    a > c > b   1 conversion worth 30, 0 nulls
    """
    return PathCounts.from_paths([["a", "b"], ["b"], ["a"], ["a", "c", "b"]],
                                 conversions=[1, 1, 0, 1], value=[10, 20, 0, 30], nulls=[0, 1, 1, 0])


def as_dict(credits, column="conversions") -> dict:
    return dict(zip(credits["channel"], credits[column]))
