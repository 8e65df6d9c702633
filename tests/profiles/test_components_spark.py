"""Connected components on Spark (large-star / small-star) equal scipy's on the same edges,
in a number of rounds that grows with the log of the largest component."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from cdp.errors import SchemaError
from profiles.components_spark import Components, connected_components, large_star, small_star

pytestmark = pytest.mark.spark

EDGE_SCHEMA = "src long, dst long"


def scipy_labels(src: np.ndarray, dst: np.ndarray) -> pd.DataFrame:
    """The reference: scipy's components of the same edges, each labelled by its smallest node id."""
    ids, dense = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n_edges = len(src)
    graph = coo_matrix((np.ones(n_edges), (dense[:n_edges], dense[n_edges:])), shape=(len(ids), len(ids)))
    _, component = scipy_components(graph, directed=False)
    smallest = pd.Series(ids).groupby(component).transform("min").to_numpy()
    return pd.DataFrame({"node": ids, "label": smallest})


def components_of(spark, src, dst, **options) -> tuple[Components, pd.DataFrame]:
    edges = spark.createDataFrame(pd.DataFrame({"src": np.asarray(src, np.int64), "dst": np.asarray(dst, np.int64)}))
    result = connected_components(edges, **options)
    return result, as_frame(result)


def as_frame(result: Components) -> pd.DataFrame:
    return result.labels.toPandas().sort_values("node").reset_index(drop=True)


def random_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct, shuffled, non-dense node ids in [0, 2**62), as monotonically_increasing_id gives."""
    ids = np.unique(rng.integers(0, 2**62, size=n + n // 10 + 10))[:n]
    rng.shuffle(ids)
    assert len(ids) == n
    return ids


@pytest.mark.parametrize(("seed", "n_nodes", "n_edges"), [
    (0, 300, 120),  # mostly pairs, small trees and isolated edges
    (1, 400, 400),  # near the giant component's birth: long thin trees
    (2, 300, 900),  # one giant component with cycles, a few stragglers
])
def test_random_sparse_graphs_equal_scipy(spark, seed, n_nodes, n_edges):
    rng = np.random.default_rng(seed)
    ids = random_ids(rng, n_nodes)
    ends = rng.integers(0, n_nodes, size=(n_edges, 2))
    src, dst = ids[ends[:, 0]], ids[ends[:, 1]]

    result, labels = components_of(spark, src, dst)

    pd.testing.assert_frame_equal(labels, scipy_labels(src, dst))
    assert 1 <= result.rounds <= 2 * math.ceil(math.log2(n_nodes)) + 4


def test_long_path_in_random_id_order_converges_in_logarithmic_rounds(spark):
    n = 2000
    ids = random_ids(np.random.default_rng(7), n)

    result, labels = components_of(spark, ids[:-1], ids[1:])

    pd.testing.assert_frame_equal(labels, scipy_labels(ids[:-1], ids[1:]))
    assert (labels["label"] == ids.min()).all()
    bound = 2 * math.ceil(math.log2(n)) + 4
    print(f"path of {n} nodes in random id order: {result.rounds} rounds (bound {bound})")
    assert result.rounds <= bound


def test_isolated_pairs_and_self_loops(spark):
    src = [10, 30, 50, 70, 70, 90, 91, 92, 92]
    dst = [20, 40, 50, 70, 80, 91, 92, 90, 92]
    # {10,20} {30,40} pairs; 50 only a loop; 70 a loop and a pair with 80; 90-91-92 a triangle with a loop
    expected = pd.DataFrame({"node": [10, 20, 30, 40, 50, 70, 80, 90, 91, 92],
                             "label": [10, 10, 30, 30, 50, 70, 70, 90, 90, 90]})

    result, labels = components_of(spark, src, dst)

    pd.testing.assert_frame_equal(labels, expected)
    pd.testing.assert_frame_equal(labels, scipy_labels(np.array(src), np.array(dst)))


def test_duplicate_and_reversed_edges_and_extreme_ids(spark):
    low, high = -(2**63), 2**63 - 1
    src = [5, 3, 3, 5, 1, 4, high, 7, low]
    dst = [3, 5, 5, 3, 4, 1, 7, high, 7]
    expected = pd.DataFrame({"node": [low, 1, 3, 4, 5, 7, high], "label": [low, 1, 3, 1, 3, low, low]})

    result, labels = components_of(spark, src, dst)

    pd.testing.assert_frame_equal(labels, expected)


def test_integer_columns_are_read_as_long(spark):
    edges = spark.createDataFrame([(2, 1), (3, 2)], "src int, dst int")

    result = connected_components(edges)

    assert result.labels.dtypes == [("node", "bigint"), ("label", "bigint")]
    assert as_frame(result).to_dict("list") == {"node": [1, 2, 3], "label": [1, 1, 1]}


def test_no_edges_no_labels_no_rounds(spark):
    result = connected_components(spark.createDataFrame([], EDGE_SCHEMA))

    assert result.rounds == 0
    assert result.labels.count() == 0
    assert result.labels.dtypes == [("node", "bigint"), ("label", "bigint")]


def test_reliable_checkpoints_give_the_same_labels(spark, tmp_path):
    rng = np.random.default_rng(3)
    ids = random_ids(rng, 200)
    ends = rng.integers(0, 200, size=(220, 2))
    src, dst = ids[ends[:, 0]], ids[ends[:, 1]]

    result, labels = components_of(spark, src, dst, checkpoint_dir=str(tmp_path / "checkpoints"))

    pd.testing.assert_frame_equal(labels, scipy_labels(src, dst))
    assert spark.sparkContext.getCheckpointDir() is not None


def test_stars_centred_on_their_smallest_node_are_a_fixed_point_of_a_round(spark):
    # What ends the rounds: once every component is such a star, another large-star +
    # small-star round gives back the same edges (and the algorithm finds them unchanged).
    stars = [(5, 1), (6, 1), (9, 1), (3, 2), (2**40, -7)]
    edges = spark.createDataFrame(stars, "node long, parent long")

    again = small_star(large_star(edges)).toPandas()

    assert sorted(again.itertuples(index=False, name=None)) == sorted(stars)


def test_one_round_on_a_path_of_five_by_hand(spark):
    # 1-2-3-4-5. Large-star: 2 → min(1,2,3)=1 takes 3; 3 → 2 takes 4; 4 → 3 takes 5: (3,1) (4,2) (5,3)
    # plus 1's own (2,1). Small-star: 3's parents {1} → (3,1); 4's {2} → (4,2); 5's {3} → (5,3).
    path = spark.createDataFrame([(2, 1), (3, 2), (4, 3), (5, 4)], "node long, parent long")

    after = small_star(large_star(path)).toPandas()

    assert sorted(after.itertuples(index=False, name=None)) == [(2, 1), (3, 1), (4, 2), (5, 3)]


def test_too_few_rounds_is_an_error_naming_the_limit(spark):
    path = spark.createDataFrame([(i, i + 1) for i in range(64)], EDGE_SCHEMA)

    with pytest.raises(RuntimeError, match=r"did not converge in max_rounds=2 .*raise max_rounds"):
        connected_components(path, max_rounds=2)


def test_stars_need_no_rounds_even_with_max_rounds_zero(spark):
    star = spark.createDataFrame([(1, 5), (6, 1), (1, 9), (2, 3)], EDGE_SCHEMA)

    result = connected_components(star, max_rounds=0)

    assert result.rounds == 0
    assert as_frame(result).to_dict("list") == {"node": [1, 2, 3, 5, 6, 9], "label": [1, 2, 2, 1, 1, 1]}


@pytest.mark.parametrize(("schema", "rows", "message"), [
    ("src long, target long", [(1, 2)], "column 'dst' missing"),
    ("src string, dst long", [("a", 2)], "column 'src' is string; expected an integer"),
    ("src long, dst long", [(1, 2), (3, None)], "null src or dst"),
])
def test_bad_edges_are_schema_errors(spark, schema, rows, message):
    with pytest.raises(SchemaError, match=message):
        connected_components(spark.createDataFrame(rows, schema))
