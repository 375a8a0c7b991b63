"""The local stack behind ``make run``: MLflow, the suggestion API and Airflow, supervised."""

from socialsuggest.stack.local import FIRST_DAG, ComponentStatus, LocalStack
from socialsuggest.stack.processes import MARKER, StackError

__all__ = ["FIRST_DAG", "MARKER", "ComponentStatus", "LocalStack", "StackError"]
