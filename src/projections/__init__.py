"""Read models: one module per view (its tables, its projection, its queries)."""
