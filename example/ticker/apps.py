from django.apps import AppConfig


class TickerConfig(AppConfig):
    name = "ticker"
