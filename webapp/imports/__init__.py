"""The import engine: fetch → map → validate → upsert in streaming pages, with runs,
scheduling, previews, rejects and the plan-limit ledger.

Plain Python called the same way by jobs (webapp.jobs), the CLI and tests:
`runs.start_run`, `runs.execute`, `runs.sweep`, `schedule.dispatch_due`,
`actions.stop` / `resume` / `import_now`, `preview.preview_now`, `forecast.forecast`,
`rejects.iter_csv`.
"""
