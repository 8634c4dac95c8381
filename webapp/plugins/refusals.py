"""Refused signatures, counted per source without a database write per refused request.

A refusal is one HINCRBY in Redis (count and latest time per source); the periodic plugin
sweep folds the counts into the source's row, and the source's page shows the row's count
plus what is not folded yet. When Redis is away a process writes the row itself, at most
once per second per source (refusals in between are added to that write, or to a write a
second later), so a flood of forged requests is never a flood of writes and no refusal is
dropped. The source's `updated_at` is never touched: it keys the receivers' secrets cache.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import bindparam, case, update

from ..extensions import db
from ..models import PluginSource
from ..models.base import utcnow

log = logging.getLogger(__name__)

COUNTS = "tributary:plugins:refused"  # source id -> refusals not folded yet
LATEST = "tributary:plugins:refused-at"  # source id -> latest refusal (epoch seconds)
FOLDING = (f"{COUNTS}:folding", f"{LATEST}:folding")  # taken by a fold, until it commits
WRITE_EVERY = 1.0  # seconds: Redis down, at most one row write per source per process
SKIP_REDIS_FOR = 1.0  # seconds: after a Redis failure, count straight to the fallback

# Take the counts for a fold in one step (new refusals go on to fresh hashes). A fold that
# stopped before it finished left its hashes: they are folded first, never overwritten.
_TAKE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[4]) end
return 1
"""

_sources = PluginSource.__table__
_at = bindparam("at", type_=_sources.c.last_bad_signature_at.type)
_ADD = (
    update(_sources).where(_sources.c.id == bindparam("sid"))
    .values(bad_signatures=_sources.c.bad_signatures + bindparam("n"),
            last_bad_signature_at=case(
                (_sources.c.last_bad_signature_at.is_(None), _at),
                (_sources.c.last_bad_signature_at < _at, _at),
                else_=_sources.c.last_bad_signature_at),
            # Named so the model's onupdate leaves it: the secrets cache is keyed on it.
            updated_at=_sources.c.updated_at)
)

_lock = threading.Lock()
_unwritten: dict[int, list] = {}  # source id -> [count, latest]: this process, Redis down
_written_at: dict[int, float] = {}  # source id -> monotonic time of this process's last write
_timers: dict[int, threading.Timer] = {}
_skip_redis_until = 0.0


def _redis():
    from .nudge import _connection

    return _connection()


def _down(exc: Exception) -> None:
    global _skip_redis_until
    _skip_redis_until = time.monotonic() + SKIP_REDIS_FOR
    log.warning("Redis unavailable, refused signatures counted in the database (%s)",
                type(exc).__name__)


def count(source_id: int) -> None:
    """One refused signature of `source_id`. Never raises: the 401 is answered whatever."""
    from redis.exceptions import RedisError

    at = utcnow()
    if time.monotonic() >= _skip_redis_until:
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.hincrby(COUNTS, str(source_id), 1)
            pipe.hset(LATEST, str(source_id), repr(at.timestamp()))
            pipe.execute()
            return
        except (RedisError, OSError) as exc:
            _down(exc)
    _fallback(source_id, at)


def _fallback(source_id: int, at: datetime) -> None:
    """Redis down: add to this process's tally, written now or when the second is up."""
    with _lock:
        tally = _unwritten.setdefault(source_id, [0, at])
        tally[0], tally[1] = tally[0] + 1, max(tally[1], at)
        wait = _written_at.get(source_id, float("-inf")) + WRITE_EVERY - time.monotonic()
        if wait > 0:
            if source_id not in _timers:
                timer = threading.Timer(wait, _write_later,
                                        (current_app._get_current_object(), source_id))
                timer.daemon = True
                _timers[source_id] = timer
                timer.start()
            return
    db.session.rollback()  # the request's reads end here: only the count is written
    _write(source_id)


def _write_later(app, source_id: int) -> None:
    with app.app_context():
        try:
            _write(source_id)
        finally:
            db.session.remove()


def _write(source_id: int) -> None:
    """This process's tally of `source_id` onto its row (put back if the write fails)."""
    with _lock:
        _timers.pop(source_id, None)
        tally = _unwritten.pop(source_id, None)
        _written_at[source_id] = time.monotonic()
    if tally is None:
        return
    try:
        db.session.execute(_ADD, [{"sid": source_id, "n": tally[0], "at": tally[1]}])
        db.session.commit()
    except Exception:  # the database is away too: keep the tally for the next write
        db.session.rollback()
        log.exception("refused signatures of source %s not written yet", source_id)
        with _lock:
            kept = _unwritten.setdefault(source_id, [0, tally[1]])
            kept[0], kept[1] = kept[0] + tally[0], max(kept[1], tally[1])


def write_unwritten() -> None:
    """Write every tally this process holds now (tests, and a process shutting down)."""
    for source_id in list(_unwritten):
        _write(source_id)


def fold() -> int:
    """Periodic: add the counts kept in Redis to the sources' rows, then drop them (running
    it again adds nothing). Returns the refusals folded; 0 when Redis is away."""
    from redis.exceptions import RedisError

    try:
        redis = _redis()
        if not redis.eval(_TAKE, 4, COUNTS, LATEST, *FOLDING):
            return 0
        counts, latest = redis.hgetall(FOLDING[0]), redis.hgetall(FOLDING[1])
    except (RedisError, OSError) as exc:
        _down(exc)
        return 0
    rows = [{"sid": int(sid), "n": int(n), "at": _when(latest.get(sid))}
            for sid, n in counts.items() if int(n) > 0]
    if rows:
        db.session.execute(_ADD, rows)
    db.session.commit()
    try:
        _redis().delete(*FOLDING)
    except (RedisError, OSError) as exc:  # folded again next time: counted twice, not lost
        _down(exc)
    return sum(row["n"] for row in rows)


def _when(value) -> datetime:
    if value is None:
        return utcnow()
    return datetime.fromtimestamp(float(value), UTC)


def shown(source: PluginSource) -> tuple[int, datetime | None]:
    """The count and latest refusal the source's page shows: its row plus what Redis and
    this process hold that is not on the row yet."""
    from redis.exceptions import RedisError

    total, last = source.bad_signatures or 0, source.last_bad_signature_at
    key = str(source.id)
    extra: list[tuple[int, datetime]] = []
    try:
        pipe = _redis().pipeline(transaction=False)
        for counts, latest in ((COUNTS, LATEST), FOLDING):
            pipe.hget(counts, key)
            pipe.hget(latest, key)
        values = pipe.execute()
        extra += [(int(n), _when(at)) for n, at in zip(values[::2], values[1::2], strict=True)
                  if n is not None and int(n) > 0]
    except (RedisError, OSError):
        pass  # the page shows what the row holds
    with _lock:
        if source.id in _unwritten:
            extra.append(tuple(_unwritten[source.id]))
    for n, at in extra:
        total += n
        last = at if last is None or at > last else last
    return total, last
