"""Windows, scheduler, task queue, workers, retries and leases."""
