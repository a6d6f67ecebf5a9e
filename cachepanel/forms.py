from __future__ import annotations

from typing import Any

from django import forms

from ragcache import keys
from ragcache.browse import KINDS, is_cursor
from ragcache.conf import LAYERS
from ragcache.invalidation import FLUSHABLE
from ragcache.semantic import CHECKS

TEN_YEARS = 10 * 365 * 86400


class KeyFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "All keys"), *[(k, k) for k in KINDS]], required=False, label="Kind")
    text = forms.CharField(
        required=False,
        max_length=500,
        label="Key or question",
        help_text="Part of a key, taken literally, or a question as a user asked it.",
    )
    cursor = forms.CharField(required=False, max_length=24, widget=forms.HiddenInput)
    # Rows already listed on this page, when a search goes on through the keyspace.
    shown = forms.IntegerField(required=False, min_value=0, max_value=10_000, widget=forms.HiddenInput)

    def clean_cursor(self) -> str:
        cursor = self.cleaned_data["cursor"] or "0"
        if not is_cursor(cursor):
            raise forms.ValidationError("The cursor is a number from the previous page.")
        return str(cursor)


class KeyForm(forms.Form):
    key = forms.CharField(max_length=1000, strip=False)

    def clean_key(self) -> str:
        key = str(self.cleaned_data["key"])
        if not keys.kind(key):
            raise forms.ValidationError(f"Only the app's own keys (starting with {keys.prefix()}) can be changed here.")
        return key


class ExpireForm(KeyForm):
    seconds = forms.IntegerField(min_value=1, max_value=TEN_YEARS)
    mode = forms.ChoiceField(choices=[("set", "Set the TTL to"), ("extend", "Extend the TTL by")])


class FlushForm(forms.Form):
    target = forms.ChoiceField(
        choices=[*[(layer, f"the {layer} layer") for layer in FLUSHABLE], ("document", "a document"), ("all", "all")]
    )
    document_id = forms.IntegerField(required=False, min_value=1)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("target") == "document" and not cleaned.get("document_id"):
            self.add_error("document_id", "Give the id of the document whose entries to flush.")
        return cleaned


class SwitchesForm(forms.Form):
    sem_threshold = forms.FloatField(
        min_value=0.5, max_value=1.0, label="Semantic threshold", help_text="Cosine similarity, 0.50 to 1.00."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for layer in LAYERS:
            self.fields[layer] = forms.BooleanField(required=False, label=layer)
        for check in CHECKS:
            self.fields[f"check_{check}"] = forms.BooleanField(required=False, label=check)

    def layers(self) -> dict[str, bool]:
        return {layer: bool(self.cleaned_data[layer]) for layer in LAYERS}

    def checks(self) -> dict[str, bool]:
        return {check: bool(self.cleaned_data[f"check_{check}"]) for check in CHECKS}
