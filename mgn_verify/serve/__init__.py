"""``mgn verify serve``: the selection run every interval, its latest state served over HTTP
(``/healthz``, ``/report``, ``/metrics``, ``/``). Imported only by that command."""
