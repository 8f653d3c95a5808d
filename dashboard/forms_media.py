"""The exercise media upload form of the dashboard (dashboard/views_media.py)."""

from __future__ import annotations

from django import forms

from programs.media.services import MAX_ALT_TEXT


class MediaUploadForm(forms.Form):
    file = forms.FileField(
        label="Image or video",
        help_text="A JPEG, PNG or WebP image, or an MP4 or WebM video.",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,video/mp4,video/webm"}
        ),
    )
    poster = forms.FileField(
        label="Poster image (videos only, optional)",
        required=False,
        help_text="A still shown before the video plays.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    alt_text = forms.CharField(
        label="Description",
        required=False,
        max_length=MAX_ALT_TEXT,
        help_text="What it shows, read aloud to patients who use a screen reader.",
    )


class MediaMoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "Up"), ("down", "Down")])
