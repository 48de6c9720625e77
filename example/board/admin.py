from django.contrib import admin

from .models import Board, Card


class CardInline(admin.TabularInline):
    model = Card
    extra = 1


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    inlines = [CardInline]


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ("text", "board")
