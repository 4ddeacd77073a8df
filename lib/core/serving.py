"""What every served model shares: the domain-flag columns and the error a bad request gets.

MLflow's scoring server answers an `MlflowException` raised by a model with its message and
status, and any other exception with a 400 that carries the Python stack trace
(``stack_trace``) and hides the message; MLflow 3 has no switch to leave the trace out. A
wrapper that finds a request's rows unusable raises `ServingInputError`, so the caller reads
what was wrong and no trace.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

IN_DOMAIN = "in_domain"
"""Output column: whether a row looks like what the model was trained on (None: unknown)."""
DOMAIN_NOTE = "domain_note"
"""Output column: why a row is outside the training domain ("" when it is inside)."""


class ServingInputError(MlflowException, ValueError):
    """Rows a served model cannot score: HTTP 400 with this message and no stack trace.

    Also a `ValueError`, which is what callers in this process (`predict`, the scorers) see.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)
