"""gunicorn settings for Tributary (override with GUNICORN_CMD_ARGS or flags)."""

import multiprocessing
import os

bind = os.environ.get("TRIBUTARY_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("TRIBUTARY_WEB_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = 4
worker_class = "gthread"
timeout = 60
graceful_timeout = 20
accesslog = "-"
# Never log query strings that could carry OAuth codes: path only.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("TRIBUTARY_FORWARDED_ALLOW_IPS", "127.0.0.1")

M_ARENA_MAX = -8  # glibc's mallopt parameter


def post_fork(server, worker):
    """Each worker's threads share two malloc arenas instead of one each (glibc's default
    allows 8 per core): the threads take turns under the GIL anyway, and a warm worker then
    holds 4-6 MB less (bench/plugins_memory.py). A libc without mallopt is left alone."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        server.log.debug("mallopt is not available: malloc arenas left at their default")
