"""Event-sourced automation runs of a seven-stage content pipeline, per site."""
