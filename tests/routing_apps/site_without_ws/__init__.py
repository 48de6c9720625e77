"""A site with no ws_urls module: it serves no WebSocket routes."""
