"""Predict page: the on-demand "Explain" control of one clip (heat map over the clip + per-frame curve).

The science is in ``echocmr.attribution`` and ``echocmr.attribution_media``
(overlay video); this module caches the result per bundle and clip and draws it.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from echocmr_app import layout
from echocmr_app.loaders import load_bundle


@st.cache_resource(show_spinner=False, max_entries=16, ttl=3600)
def _explain(bundle_path: str, bundle_stamp: str, clip_key: str, view: str, _frames, fps: float):
    """(attribution, overlay WebM bytes) of one clip's WMA output, cached by bundle + clip + view."""
    from echocmr.attribution import explain_clip
    from echocmr.attribution_media import overlay_webm

    model = load_bundle(bundle_path).view_models[view]
    attribution = explain_clip(model, _frames, fps=fps)
    return attribution, overlay_webm(attribution, model.target_fps or fps)


def importance_figure(attribution) -> go.Figure:
    """Plotly bars: each window frame's share of the positive attribution."""
    numbers = list(range(1, len(attribution.frame_indices) + 1))
    fig = go.Figure(go.Bar(
        x=numbers, y=[100 * float(v) for v in attribution.frame_importance], marker_color=layout.VIEW_COLOURS["A4C"],
        customdata=[int(i) + 1 for i in attribution.frame_indices],
        hovertemplate="window frame %{x} (clip frame %{customdata})<br>%{y:.1f} % of the evidence<extra></extra>"))
    fig.update_layout(title="Per-frame importance", height=300, showlegend=False,
                      xaxis_title="window frame", yaxis_title="% of WMA evidence")
    return fig


def explain_control(clip, bundle_path: str, synthetic: bool) -> None:
    """A toggle under a clip that fed a view model; when on, the overlay plays beside the curve."""
    from echocmr.bundle import content_stamp

    key = f"explain-{clip.clip.content_hash}-{clip.used_for}"
    if not st.toggle("Explain: where did the model look for wall-motion abnormality?", key=key,
                     help="Attribution of the view model's WMA output over this clip (a few seconds)."):
        return
    with st.spinner("Computing the attribution…"):
        attribution, webm = _explain(bundle_path, content_stamp(bundle_path), clip.clip.content_hash,
                                     clip.used_for, clip.clip.frames, float(clip.clip.fps))
    video, curve = st.columns(2)
    with video:
        st.video(webm, format="video/webm", loop=True, autoplay=True, muted=True)
        st.caption("Bright colour: where the evidence for WMA lies (positive attribution), "
                   "over the model window's frames.")
    with curve:
        layout.show_figure(importance_figure(attribution), f"wma-attribution-{clip.index + 1}", html_download=False)
    origin = "a model trained on synthetic data" if synthetic else "the active model"
    st.caption(f"**What this is:** {attribution.method}, of the "
               f"{clip.used_for} model's `{attribution.output}` output — WMA in the segments this "
               f"view shows — for the clip's central window of {len(attribution.frame_indices)} frames; window "
               f"P(WMA) {attribution.probability:.0%} (the prediction above averages several windows). "
               f"Computed in {attribution.seconds:.1f} s by {origin}. It shows what the model used, not where "
               "the heart is abnormal: whether it points at the abnormal wall is measured on synthetic clips "
               "with one akinetic segment (README, *Attribution*).")
