from django.apps import AppConfig


class ClassicConfig(AppConfig):
    name = "classic"
