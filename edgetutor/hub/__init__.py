"""The coordinator hub: enrollment, event ingest, USB bundle import, reports and the dashboard."""
