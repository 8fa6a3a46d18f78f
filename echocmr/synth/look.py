"""Image-formation realism: what makes one synthetic study look unlike another, and like echo.

``Look`` holds the values used for one clip; ``Realism`` holds the ranges they are drawn from (one
field per effect, each with a realistic default). Ranges come from acoustic reasoning and common
scanner settings (dynamic range 60–80 dB, speckle cells a few wavelengths wide, lateral-wall
dropout where the wall runs parallel to the beam), never from fitting to the real files that
``bench/realism.py`` measures against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class Look:
    """One clip's image-formation values (defaults: a typical, fairly good study).

    Lengths are fractions of the sector depth; ``irregularity`` is in elliptic rho units.
    """

    headroom_db: float = 43.0  # how far below full white an echo of linear level 1 is displayed
    dynamic_range_db: float = 70.0  # displayed range: echoes this far below white are black
    speckle_lateral: float = 0.015  # speckle cell sigma across the beam at mid-depth (the focus)
    speckle_axial: float = 0.016  # speckle cell sigma along the beam (pulse length)
    sidelobe: float = 0.35  # side-lobe leakage: share of the surrounding echo seen at each point
    decorrelation: float = 0.25  # image-speckle decorrelation angle (rad) per frame at 30 fps
    lateral_dropout: float = 0.5  # fractional echo loss of the wall parallel to the beam
    apical_dropout: float = 0.3  # fractional echo loss just below the transducer
    clutter: float = 0.02  # near-field haze, linear echo level at the skin line
    reverberation: float = 0.02  # linear level of the first reverberation band
    irregularity: float = 0.04  # endocardial roughness (trabeculation), rho units
    tgc: float = 0.7  # share of the depth attenuation that time-gain compensation undoes
    foreshortening: float = 0.0  # apical views: fractional shortening of the LV long axis


@dataclass(frozen=True)
class Realism:
    """Ranges (lo, hi) from which each clip's ``Look`` and rhythm are drawn uniformly."""

    headroom_db: Range = (38.0, 48.0)  # overall gain varies from study to study
    dynamic_range_db: Range = (60.0, 80.0)  # acquisition-to-display range, compression included
    speckle_lateral: Range = (0.010, 0.020)  # 2-3 MHz beam at 12-20 cm: 4-8 mm wide (FWHM)
    speckle_axial: Range = (0.012, 0.020)  # long harmonic-imaging pulses, scanner smoothing
    sidelobe: Range = (0.2, 0.5)  # cavity haze: worse in poor acoustic windows
    decorrelation: Range = (0.15, 0.40)  # out-of-plane motion and probe/patient movement
    lateral_dropout: Range = (0.2, 0.85)
    apical_dropout: Range = (0.0, 0.6)
    clutter: Range = (0.005, 0.05)
    reverberation: Range = (0.0, 0.04)
    irregularity: Range = (0.02, 0.07)
    tgc: Range = (0.5, 0.9)
    foreshortening: Range = (0.0, 0.2)
    beats: Range = (3.0, 5.0)  # cardiac cycles per clip
    rr_jitter: Range = (0.02, 0.06)  # beat-to-beat RR variability (coefficient of variation)
    ectopic_probability: float = 0.08  # chance a clip contains one premature beat
    heart_scale: Range = (0.95, 1.25)  # above ~1.1 parts of the heart fall outside the fan
    offset_sd: float = 0.035  # heart shift within the fan (canvas fractions)

    def draw_look(self, rng: np.random.Generator, view: str) -> Look:
        def u(r: Range) -> float:
            return float(rng.uniform(*r))

        apical = view in ("A4C", "A2C", "A3C")
        return Look(
            headroom_db=u(self.headroom_db), dynamic_range_db=u(self.dynamic_range_db),
            speckle_lateral=u(self.speckle_lateral), speckle_axial=u(self.speckle_axial),
            sidelobe=u(self.sidelobe),
            decorrelation=u(self.decorrelation), lateral_dropout=u(self.lateral_dropout),
            apical_dropout=u(self.apical_dropout) if apical else 0.5 * u(self.apical_dropout),
            clutter=u(self.clutter), reverberation=u(self.reverberation),
            irregularity=u(self.irregularity), tgc=u(self.tgc),
            foreshortening=u(self.foreshortening) if apical else 0.0,
        )


def draw_rhythm(rng: np.random.Generator, realism: Realism, min_beats: float) -> tuple[float, tuple[float, ...]]:
    """(beats the clip shows, relative RR interval of each beat (mean ~1)).

    RR intervals jitter and, sometimes, one premature (ectopic) beat comes early (RR x0.65) and
    is followed by a compensatory pause (x1.35); ``beat_strength`` weakens its contraction (less
    filling time). Two spare beats cover the clip's start phase and rounding.
    """
    beats = max(min_beats, float(rng.uniform(*realism.beats)))
    n = int(np.ceil(beats)) + 2
    rr = 1.0 + rng.uniform(*realism.rr_jitter) * rng.standard_normal(n)
    if rng.random() < realism.ectopic_probability:
        k = int(rng.integers(1, n - 2))
        rr[k], rr[k + 1] = 0.65 * rr[k], 1.35 * rr[k + 1]
    return beats, tuple(float(v) for v in np.clip(rr, 0.5, 1.6))


def beat_strength(rr: tuple[float, ...]) -> np.ndarray:
    """float (n,) contraction amplitude per beat: a short (premature) beat contracts less."""
    r = np.asarray(rr)
    return np.clip(0.4 + 0.6 * r, 0.6, 1.0)


def phase_track(rr: tuple[float, ...], start_phase: float, beat_s: float, times: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(phase in cycles, contraction amplitude) at ``times`` (s) for beats of ``rr`` × ``beat_s``.

    Beat k spans cumulative RR; within it the phase runs 0..1, so ``contraction`` applies as is.
    """
    bounds = np.concatenate([[0.0], np.cumsum(rr)]) * beat_s
    t = times + start_phase * rr[0] * beat_s
    k = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(rr) - 1)
    frac = (t - bounds[k]) / (bounds[k + 1] - bounds[k])
    return k + frac, beat_strength(rr)[k]
