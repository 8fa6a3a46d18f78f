"""Page furniture shared by every page: the synthetic-cohort banner, clips, images, figures, downloads."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from echocmr import media
from echocmr.trust import csv_text

PLOT_FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=13)
VIEW_COLOURS = {"A4C": "#2F6690", "A2C": "#3A7D44", "PLAX": "#B5651D", "global": "#1F2933"}
# Muted, colour-blind-safe-ish sequence for other multi-line charts (Tableau 10, desaturated order).
COLOURWAY = ["#2F6690", "#D1793B", "#3A7D44", "#8E6C8A", "#C44E52", "#6B7B8C", "#B8A44C", "#4C9F9F"]


def banner(synthetic: bool, what: str = "model") -> None:
    """Every page says loudly when numbers come from the synthetic cohort."""
    if synthetic:
        st.warning(
            f"**Synthetic cohort.** This {what} was trained and tested on computer-generated echo "
            "videos and CMR reports, not on patients. Its numbers show that the software works; "
            "they say nothing about clinical accuracy. Research use only.",
            icon=":material/science:",
        )


def research_note() -> None:
    st.caption("Research software. Not a medical device; not for diagnosis or treatment decisions.")


@st.cache_data(show_spinner=False, max_entries=64)
def _webm(key: str, _frames, fps: float) -> bytes:
    return media.encode_webm(_frames, fps=fps, size=224)


def play_clip(frames, fps: float, key: str) -> None:
    """A de-identified clip, looping silently in the browser (key: the clip's content hash)."""
    st.video(_webm(key, frames, float(fps)), format="video/webm", loop=True, autoplay=True, muted=True)


@st.cache_data(show_spinner=False, max_entries=64)
def _png(key: str, _image) -> bytes:
    return media.encode_png(_image)


def show_image(image, key: str, caption: str | None = None, width: int | str = "stretch") -> None:
    st.image(_png(key, image), caption=caption, width=width)


def show_figure(fig, name: str, html_download: bool = True) -> None:
    """A plotly chart with PNG export in its toolbar (client-side) and an HTML download."""
    fig.update_layout(font=PLOT_FONT, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white",
                      colorway=COLOURWAY)
    config = {"displaylogo": False,
              "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2},
              "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
    st.plotly_chart(fig, width="stretch", config=config, key=f"fig-{name}")
    if html_download:
        st.download_button("Download figure (HTML)", data=lambda: fig.to_html(include_plotlyjs=True),
                           file_name=f"{name}.html", mime="text/html", on_click="ignore",
                           key=f"html-{name}", icon=":material/download:")


def csv_download(frame: pd.DataFrame, name: str, label: str = "Download table (CSV)") -> None:
    st.download_button(label, data=csv_text(frame).encode("utf-8"), file_name=f"{name}.csv",
                       mime="text/csv", on_click="ignore", key=f"csv-{name}", icon=":material/download:")
