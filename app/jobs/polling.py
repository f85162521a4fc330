"""The executor of an API process that does not run training workers itself.

Under `dnn-service serve --api-workers N` the serve parent runs the local worker pool; the API
processes store jobs as queued rows, and the parent's workers find them on their next poll
(app/jobs/local.py IDLE_POLL_SECONDS), so nothing needs to be sent to them.
"""

from __future__ import annotations


class PollingExecutor:
    def start(self) -> None:
        pass

    def submit(self, job_id: str) -> None:
        # The job is a queued row already; the supervisor's workers poll for queued rows.
        pass

    def ready(self) -> bool:
        # The workers are the supervisor's; if they die, it replaces them (or exits).
        return True

    def stop(self) -> None:
        pass
