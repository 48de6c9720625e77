"""A site whose ROOT_URLCONF has a ws_urls sibling."""
