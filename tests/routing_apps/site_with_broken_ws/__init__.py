"""A site whose ws_urls exists but fails to import a module of its own."""
