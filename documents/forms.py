from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from documents.models import Collection, Document
from documents.parsing import CONTENT_TYPES
from documents.services import DuplicateDocumentError, UploadError, sha256, upload_validate

ACCEPT = ",".join(CONTENT_TYPES)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        # Each file is judged on its own by the upload service, so one bad file
        # (empty, too big) gets its own message instead of failing the whole form.
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return files


class UploadForm(forms.Form):
    collection = forms.ModelChoiceField(queryset=Collection.objects.order_by("name"), empty_label=None)
    uploads = MultipleFileField(
        widget=MultipleFileInput(attrs={"accept": ACCEPT}),
        help_text=f"{', '.join(CONTENT_TYPES)}; up to {filesizeformat(settings.UPLOAD_MAX_BYTES)} each.",
    )


class DocumentAdminForm(forms.ModelForm):
    upload = forms.FileField(
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
        help_text="A .txt, .md, .html or .pdf file. Uploading to an existing document re-ingests it; "
        "only chunks whose text changed are embedded again.",
    )

    class Meta:
        model = Document
        fields = ["collection", "title", "upload"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["title"].help_text = "Taken from the file when left empty."
        self.upload_data: bytes | None = None

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        upload = cleaned.get("upload")
        if upload is None:
            if self.instance.pk is None:
                self.add_error("upload", "Choose a file to upload.")
            return cleaned
        try:
            upload_validate(filename=upload.name, size=upload.size)
        except UploadError as exc:
            self.add_error("upload", str(exc))
            return cleaned
        self.upload_data = upload.read()
        collection = cleaned.get("collection")
        duplicate = (
            Document.objects.filter(collection=collection, content_hash=sha256(self.upload_data))
            .exclude(pk=self.instance.pk)
            .first()
        )
        # A new upload of a failed document's bytes retries that document (document_accept).
        retries_failed = (
            self.instance.pk is None and duplicate is not None and duplicate.status == Document.Status.FAILED
        )
        if duplicate is not None and not retries_failed:
            self.add_error("upload", str(DuplicateDocumentError(duplicate)))
        return cleaned
