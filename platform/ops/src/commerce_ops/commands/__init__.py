"""One module per CLI concern; each defines `register(app: typer.Typer) -> None`."""
