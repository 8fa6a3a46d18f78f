"""Which clips of a study feed which view model, and why the others are left out.

A real study holds 40–120 clips: several of each model view, other views, Doppler and colour
clips, still frames. Every clip is view-classified; a clip feeds its view's model only when it is
a cine (never a still), its view is one a model uses, the classifier is confident (or the user
set the view) and it has at least one model window of frames at the model's frame rate (a
shorter clip would be looped, i.e. the model would see invented motion).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_VIEW_CONFIDENCE = 0.5  # below this the classifier's view is a guess: the clip is left out
# Test-time windows per view: a view with up to 3 clips gets the usual 4 windows per clip; one with
# more clips fewer per clip (at most 12 in all, at least 1 per clip), since the mean over clips
# already averages. Keeps a 100-clip study's cost bounded by the views rather than the clip count.
VIEW_WINDOW_BUDGET = 12


@dataclass(frozen=True)
class SelectionPolicy:
    # Read when a policy is made, so the module's one threshold is the default everywhere.
    min_view_confidence: float = field(default_factory=lambda: MIN_VIEW_CONFIDENCE)


def left_out_reason(clip, model, policy: SelectionPolicy, frames_at_model_rate: int | None) -> str:
    """Why ``clip`` (a ClipPrediction) does not feed a view model; "" when it does.

    ``model`` is the LoadedModel of the clip's view (None: no model uses that view).
    """
    if clip.clip.n_frames < 2:
        return "still image (a single frame never feeds a view model)"
    if model is None:
        return f"view {clip.view}: no model uses it"
    if not clip.view_confirmed and clip.view_confidence < policy.min_view_confidence:
        return (f"view {clip.view} only {clip.view_confidence:.0%} confident "
                f"(needs {policy.min_view_confidence:.0%}; set the view to use it)")
    window = model.sampling.n_frames
    if frames_at_model_rate is not None and frames_at_model_rate < window:
        return (f"{frames_at_model_rate} frames at the model's rate: shorter than the {clip.view} model's "
                f"{window}-frame window")
    return ""


def awaits_confirmation(clip, model, policy: SelectionPolicy) -> bool:
    """A cine of a model view whose view the classifier is unsure of and nobody confirmed: it
    stays out of the per-view models and fusion until a user confirms (sets) its view."""
    return (model is not None and clip.clip.n_frames > 1 and not clip.view_confirmed
            and clip.view_confidence < policy.min_view_confidence)


def windows_per_clip(n_members: int, n_clips: int, budget: int = VIEW_WINDOW_BUDGET) -> int:
    """Test-time windows for each of a view's ``n_members`` clips (``n_clips`` when few)."""
    return max(1, min(n_clips, budget // max(n_members, 1)))


def views_fed(clips) -> dict[str, list[str]]:
    """View -> display names of the clips that fed its model (for reports)."""
    fed: dict[str, list[str]] = {}
    for clip in clips:
        if clip.used_for:
            fed.setdefault(clip.used_for, []).append(clip.display_name)
    return fed
