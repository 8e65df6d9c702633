"""Connected components of an undirected graph on Spark DataFrames, never collected to the driver.

The large-star / small-star algorithm of Kiveris, Lattanzi, Mirrokni, Rastogi and
Vassilvitskii, "Connected Components in MapReduce and Beyond" (SoCC 2014). The graph is
kept as a set of edges ``(node, parent)`` with ``parent < node``; each round applies

- **large-star**: every node u, with m = min(Γ(u) ∪ {u}), hands each larger neighbour v
  over to m: emits (v, m) for v ∈ Γ(u), v > u;
- **small-star**: every node u, with m = min of its smaller neighbours and u, links those
  neighbours and u itself to m: emits (v, m) for each smaller neighbour v and (u, m),
  self loops left out.

Neither step changes the components; together they shrink the graph's depth geometrically,
so a component of n nodes is done in O(log n) rounds in practice (the paper proves
O(log² n)). The rounds stop at the fixed point, where every component is a star whose
centre is its smallest node: then each node's label is its parent, or itself for a centre.

Only counts (and the emptiness test that ends the rounds) reach the driver. Each round's
edges are checkpointed, so the plan Spark has to keep and re-optimise stays one round deep.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.errors import CdpError, SchemaError

try:
    from pyspark.errors import PySparkException
    from pyspark.sql import Column, DataFrame
    from pyspark.sql import functions as F
    from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType
except ImportError:  # pragma: no cover - depends on the installed extras
    raise CdpError("connected components on Spark need PySpark: pip install 'cdp-ml[spark]' (and Java 17)") from None

_INTEGRAL_TYPES = (LongType, IntegerType, ShortType, ByteType)
_NULL_END = "edges: an edge has a null src or dst (every edge needs both ends)"


@dataclass(frozen=True)
class Components:
    """The result of `connected_components`.

    Attributes
    ----------
    labels:
        One row per node that appears in any edge: ``node`` (long) and ``label`` (long), the
        smallest node id of its component. Already computed and checkpointed: reading it
        runs no more rounds.
    rounds:
        How many large-star + small-star rounds ran before the edges were stars (0 when the
        input already was, e.g. no edges or only disjoint pairs). The final check that finds
        nothing left to do is not counted as a round.
    """

    labels: DataFrame
    rounds: int


def connected_components(edges: DataFrame, checkpoint_dir: str | None = None, max_rounds: int = 64) -> Components:
    """Label every node of an undirected graph with the smallest node id of its component.

    Parameters
    ----------
    edges:
        Columns ``src`` and ``dst``: non-null integers (read as long); node ids are any
        64-bit values, not necessarily dense. Self loops, duplicate and reversed pairs are
        allowed; a node whose only edges are self loops is a component of its own.
    checkpoint_dir:
        Where each round's edges are checkpointed (reliable checkpoints, which survive a lost
        executor). Set as the Spark context's checkpoint directory unless one is already set:
        that setting is context-wide, and an existing one is kept. Superseded rounds' files
        stay there unless ``spark.cleaner.referenceTracking.cleanCheckpoints`` is on. Without
        it, rounds are local checkpoints (executor storage: faster, lost with an executor).
    max_rounds:
        Rounds allowed before giving up; the rounds a graph needs grow with the log of its
        largest component's size, so the default is far beyond any real graph.

    Returns
    -------
    Components
        ``labels`` (``node``, ``label``) and the number of ``rounds`` it took.

    Raises
    ------
    SchemaError
        ``src`` or ``dst`` is missing, not an integer column, or null in some row.
    RuntimeError
        The edges were not stars after ``max_rounds`` rounds.
    """
    if max_rounds < 0:
        raise ValueError(f"max_rounds must be >= 0, got {max_rounds}")
    reliable = checkpoint_dir is not None
    if checkpoint_dir is not None:
        context = edges.sparkSession.sparkContext
        if context.getCheckpointDir() is None:
            context.setCheckpointDir(checkpoint_dir)

    try:
        undirected = _truncate(_undirected_edges(edges), reliable)
    except PySparkException as error:
        if _NULL_END in str(error):
            raise SchemaError(_NULL_END) from None
        raise
    current = undirected.where("node != parent")
    rounds = 0
    while not _unsettled_nodes(current).isEmpty():
        if rounds == max_rounds:
            unsettled = _unsettled_nodes(current).count()
            current.unpersist()
            raise RuntimeError(f"connected components did not converge in max_rounds={max_rounds} "
                               f"large-star/small-star rounds ({unsettled} nodes not yet in a star); "
                               "raise max_rounds")
        following = _cached_if(_truncate(small_star(large_star(current)), reliable), reliable)
        current.unpersist()
        current, rounds = following, rounds + 1

    labels = _truncate(_labels(_nodes(undirected), current), reliable)
    current.unpersist()
    return Components(labels=labels, rounds=rounds)


def large_star(edges: DataFrame) -> DataFrame:
    """One large-star step on ``(node, parent)`` edges (parent < node): each node u hands
    its larger neighbours to the smallest of u and its neighbours. Output may repeat edges."""
    return (_both_directions(edges)
            .selectExpr("neighbour AS node", "least(node, min(neighbour) OVER (PARTITION BY node)) AS parent",
                        "neighbour > node AS larger")
            .where("larger").drop("larger"))


def small_star(edges: DataFrame) -> DataFrame:
    """One small-star step on ``(node, parent)`` edges (parent < node): each node and all its
    parents are linked to the smallest of those parents. Output is distinct, without self loops."""
    return (edges.selectExpr("node", "parent", "min(parent) OVER (PARTITION BY node) AS smallest")
            .selectExpr("inline(array(struct(parent AS node, smallest AS parent), struct(node, smallest AS parent)))")
            .where("node != parent").distinct())


def _unsettled_nodes(edges: DataFrame) -> DataFrame:
    """Nodes that keep the edges from being stars centred on their smallest nodes.

    A node is settled when it is a centre (no smaller neighbour) or a leaf (exactly one
    neighbour, a smaller one). When every node is, one more round would change nothing
    (large-star finds every m = u or no larger neighbour; small-star finds single parents
    that are already the minimum), and each parent is its component's smallest node: this is
    the fixed point, checked in one aggregation instead of comparing two rounds' edge sets.
    """
    per_node = _both_directions(edges).groupBy("node").agg(F.expr("count_if(neighbour < node) AS smaller"),
                                                           F.expr("max(neighbour) AS largest"))
    return per_node.where("smaller > 1 OR (smaller = 1 AND largest > node)")


def _undirected_edges(edges: DataFrame) -> DataFrame:
    """The input as ``(node, parent)`` with parent <= node (self loops kept, for `_nodes`);
    a null end fails the job with `_NULL_END`, which is then reported as a SchemaError."""
    for column in ("src", "dst"):
        if column not in edges.columns:
            raise SchemaError(f"edges: column {column!r} missing (has {', '.join(edges.columns) or 'no columns'}); "
                              "expected src and dst")
        field_type = edges.schema[column].dataType
        if not isinstance(field_type, _INTEGRAL_TYPES):
            raise SchemaError(f"edges: column {column!r} is {field_type.simpleString()}; expected an integer node id "
                              "(bigint)")
    src, dst = F.col("src").cast("long"), F.col("dst").cast("long")

    def checked(end: Column) -> Column:
        return F.when(src.isNull() | dst.isNull(), F.raise_error(F.lit(_NULL_END))).otherwise(end)

    return edges.select(checked(F.greatest(src, dst)).alias("node"), checked(F.least(src, dst)).alias("parent"))


def _nodes(undirected: DataFrame) -> DataFrame:
    """Every node at either end of an edge, once."""
    return _both_directions(undirected).select("node").distinct()


def _labels(nodes: DataFrame, stars: DataFrame) -> DataFrame:
    """Each node's parent in the final stars, or the node itself for a centre or a loner.
    In stars every leaf has exactly one parent, so the join keeps one row per node."""
    return (nodes.join(stars, "node", "left")
            .select("node", F.coalesce(F.col("parent"), F.col("node")).alias("label")))


def _both_directions(edges: DataFrame) -> DataFrame:
    """Each edge ``(node, parent)`` as ``(node, neighbour)`` from both of its ends."""
    return edges.selectExpr(
        "inline(array(struct(node, parent AS neighbour), struct(parent AS node, node AS neighbour)))")


def _truncate(frame: DataFrame, reliable: bool) -> DataFrame:
    """``frame`` computed now and its lineage cut: a reliable checkpoint (files in the
    context's checkpoint directory) or a local one (executor block storage)."""
    return frame.checkpoint(eager=True) if reliable else frame.localCheckpoint(eager=True)


def _cached_if(frame: DataFrame, reliable: bool) -> DataFrame:
    """A round's edges are read twice (the check, the next round): from memory rather than
    re-reading checkpoint files. Local checkpoints already live in executor storage."""
    return frame.cache() if reliable else frame
