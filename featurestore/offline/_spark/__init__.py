"""The Spark offline engine (``offline_store: {type: spark}``): point-in-time training sets and
windowed aggregations as Spark window functions, values by the shared value code."""

from featurestore.offline._spark._engine import SparkEngine
from featurestore.offline._spark._session import spark_session

__all__ = ["SparkEngine", "spark_session"]
