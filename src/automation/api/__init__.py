"""The HTTP API: FastAPI routes over the application and the read models."""
