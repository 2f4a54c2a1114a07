"""Adapters: persistence, messaging and AI providers behind the application's ports."""
