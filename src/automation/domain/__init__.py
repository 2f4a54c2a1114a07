"""The domain: aggregates, their events, values and errors. Imports no framework."""
