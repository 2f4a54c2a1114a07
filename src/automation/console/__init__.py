"""The run console (a static page of the project's own that uses only the public HTTP API)
and the offline API documentation, both served by the API process itself."""
