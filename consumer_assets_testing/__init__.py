"""Shared by the tests and the benchmarks, never part of the product: independent re-computations
(the DuckDB histories oracle) and simulated, labelled data sets with their ground truth."""
