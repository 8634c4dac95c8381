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
