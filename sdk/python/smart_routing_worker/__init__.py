"""Python worker SDK for smart-routing: join a dispatcher and serve your own task types."""

from .worker import TaskFailed, Worker

__all__ = ["Worker", "TaskFailed"]
