"""A Django app whose ``ws.py`` holds the decorator DSL's forms, autodiscovered."""
