"""The tests' Spark standalone cluster: `bench.spark_cluster` (the benchmarks start the same one)."""

from bench.spark_cluster import Cluster, standalone_cluster

__all__ = ["Cluster", "standalone_cluster"]
