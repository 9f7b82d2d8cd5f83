"""The web UI: server-rendered pages (Jinja2, htmx, a vendored chart library) over the same
read model as the CLI's `--json` and `/api`, served by `depot serve` at `/`."""

__all__: list[str] = []
