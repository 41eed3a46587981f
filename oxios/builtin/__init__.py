"""Built-in plugins: ordinary plugin modules registered before any entry point."""
