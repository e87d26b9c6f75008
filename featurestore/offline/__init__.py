"""The offline engine: DuckDB reads sources and runs point-in-time joins."""
