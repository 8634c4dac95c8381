"""What a source's page shows: its keys (prefixes and validity, never the secrets), the
delivery URL or install tag, and the topics to create. Read-only."""

from __future__ import annotations

from sqlalchemy import select

from ..commerce import history
from ..extensions import db
from ..models.base import utcnow
from ..models.plugins import PluginKey, PluginSource
from ..providers.shopify.webhooks import TOPICS as SHOPIFY_TOPICS
from . import keys, refusals, sources

KEY_LABELS = {"server": "Server key", "public": "Browser (public) key",
              "signing": "Signing secret"}


def source_context(source: PluginSource) -> dict:
    now = utcnow()
    rows = list(db.session.scalars(select(PluginKey).where(
        PluginKey.source_id == source.id).order_by(PluginKey.kind, PluginKey.id.desc())))
    shown = [{"row": r, "label": KEY_LABELS[r.kind],
              "valid": r.revoked_at is None and (r.expires_at is None or r.expires_at > now)}
             for r in rows]
    context = {
        "source": source, "kind_label": sources.KINDS[source.kind], "key_rows": shown,
        "key_labels": KEY_LABELS, "rotatable": sources.KEY_KINDS_OF[source.kind],
        "refused": refusals.shown(source),
        "woo_topics": sources.WOO_TOPICS, "shopify_topics": SHOPIFY_TOPICS,
        "delivery_url": None, "host": None, "public_key": None, "kind": source.kind,
        "form": {
            "name": source.name, "list_id": source.list_id, "cycle_id": source.cycle_id or "",
            "cycle_day": source.cycle_day, "add_events": list(source.add_events or []),
            "allow_unconsented_subscribe": source.allow_unconsented_subscribe,
            "allowed_origins": "\n".join(source.allowed_origins or []),
            "require_signature": source.require_signature,
        },
    }
    if source.kind == "shopify":
        context.update(history_context(source))
    if source.kind in ("shopify", "woocommerce"):
        context["delivery_url"] = sources.delivery_url(source)
    else:
        context["host"] = sources.tracking_host()
        context["public_key"] = keys.public_key(source.id)
    return context


def history_context(source: PluginSource) -> dict:
    """The order history widget: the latest run, whether it is live (a run that stopped
    moving is not: it can be started again), and why a start is refused ("" if it is not)."""
    run = history.latest(source.id)
    live = run is not None and run.status in history.LIVE
    stale = live and history.is_stale(run)
    return {"history_run": run, "history_live": live and not stale, "history_stale": stale,
            "history_blocked": history.why_not(source)}
