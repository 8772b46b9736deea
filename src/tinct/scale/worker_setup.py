"""Set-up of the worker processes of ``tinct batch``'s local cluster (a Dask preload).

Ctrl-C (or SIGTERM) stops ``tinct batch`` while its workers are busy: each worker then closes
under a running task and Dask logs, from that worker's process, ``Async instruction for
<Task cancelled name="execute('tinct-batch-...')" ...> ended with CancelledError`` at WARNING
level, a line of Dask's own between the progress bar and ``tinct batch: interrupted``
(Dask's comment: it "should exclusively happen in Worker.close()"). The local cluster's
workers load this module (``distributed.worker.preload`` in
:data:`tinct.scale.batch.LOCAL_CLUSTER_CONFIG`); :func:`dask_setup` drops that record only,
every other record of Dask's is kept.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["dask_setup"]

#: The Dask logger that says so, and the words of the record dropped.
STATE_MACHINE_LOGGER = "distributed.worker.state_machine"
CANCELLED_AT_CLOSE = "ended with CancelledError"


class _CancelledAtClose(logging.Filter):
    """Drops the record of a task cancelled as its worker closes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return CANCELLED_AT_CLOSE not in record.getMessage()


def dask_setup(worker: Any = None) -> None:
    """Called by Dask as the worker starts: add the filter (once) to the state machine's logger.

    Args:
        worker: The starting :class:`distributed.Worker` (unused).
    """
    logger = logging.getLogger(STATE_MACHINE_LOGGER)
    if not any(isinstance(f, _CancelledAtClose) for f in logger.filters):
        logger.addFilter(_CancelledAtClose())
