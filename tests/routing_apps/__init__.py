"""Small ws urlconfs and middleware for the routing and chain tests."""
