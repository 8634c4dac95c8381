"""Plugin imports: sources, receivers, stored events, processing and the event log."""
