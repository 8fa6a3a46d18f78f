"""``echocmr predict FILES…``: one study's files → per-clip views, per-view and fused predictions."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..config import ATTRIBUTION_METHODS, AttributionConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="predict CMR findings for one echo study (DICOM / AVI / MP4 files or a zip)",
        description="Ingest the files of one study, classify each clip's view, run the per-view models and fuse.")
    p.add_argument("files", nargs="*", type=Path, help="the study's files (a zip counts as many)")
    p.add_argument("--model", type=Path, help="model bundle folder (default: the active bundle)")
    p.add_argument("--view", action="append", default=[], metavar="N=VIEW",
                   help="override the view of clip N (1-based), e.g. --view 2=A2C; repeatable")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--min-view-confidence", type=float, default=None, metavar="P",
                   help="a clip feeds its view's model only when the view classifier is at least this "
                        "confident (default 0.5; a view set with --view always counts)")
    from .pull import add_pacs_arguments

    add_pacs_arguments(p, required=False)
    p.add_argument("--study", help="with --dicomweb: the study instance UID, predicted in memory (nothing written)")
    p.add_argument("--windows", type=int, default=0, metavar="N",
                   help="published-weights bundles: average N windows per video (test-time averaging, "
                        "not the published protocol; default 0 = exact: first 32 frames, stride 2)")
    p.add_argument("--explain", type=Path, metavar="DIR",
                   help="also write, per clip that fed a view model, where the model looked for WMA: a PNG "
                        "(frames with the attribution heat map + per-frame importance) and a WebM overlay")
    p.add_argument("--explain-method", choices=ATTRIBUTION_METHODS, default=AttributionConfig().method,
                   help="attribution method of --explain (default: %(default)s; README, Attribution)")
    p.set_defaults(func=run)


def _sources(args: argparse.Namespace) -> list:
    """The files given, or (``--dicomweb``) the study's ultrasound instances held in memory."""
    from ..errors import ConfigError

    if args.dicomweb:
        if args.files or not args.study:
            raise ConfigError("with --dicomweb give --study UID and no files")
        from ..pacs import study_sources
        from .pull import pacs_config

        return study_sources(pacs_config(args), args.study)
    if not args.files:
        raise ConfigError("give the study's files, or --dicomweb URL --study UID")
    return [(f"file {i + 1}", path) for i, path in enumerate(args.files)]


def _overrides(pairs: list[str]) -> dict[int, str]:
    from ..errors import ConfigError

    overrides = {}
    for pair in pairs:
        number, _, view = pair.partition("=")
        if not number.isdigit() or not view:
            raise ConfigError(f"--view takes N=VIEW (e.g. 2=A2C); got {pair!r}")
        overrides[int(number) - 1] = view
    return overrides


def run(args: argparse.Namespace) -> int:
    from ..bundle import active_bundle_dir, load_bundle
    from ..study_prediction import bundle_jpeg_decode, ingest_study, predict_study

    started = time.perf_counter()
    bundle = load_bundle(str(args.model or active_bundle_dir()))
    loaded = time.perf_counter()
    sources = _sources(args)
    items = ingest_study(sources, jpeg_decode=bundle_jpeg_decode(bundle))
    ingested = time.perf_counter()
    from ..clip_selection import MIN_VIEW_CONFIDENCE, SelectionPolicy

    confidence = MIN_VIEW_CONFIDENCE if args.min_view_confidence is None else args.min_view_confidence
    published = _published_options(bundle, sources, items, args.windows)
    result = predict_study(items, bundle, _overrides(args.view), policy=SelectionPolicy(confidence),
                           published=published)
    result.timings = {"model_load": loaded - started, "ingest": ingested - loaded, **result.timings}
    notes = published_notes(bundle.meta, published)
    if args.explain:
        _explain(result, bundle, args.explain, AttributionConfig(method=args.explain_method))
    if args.json:
        print(json.dumps({**result.to_json(), **({"model": notes} if notes else {})}, indent=2))
    else:
        print("\n".join(notes.values()) + "\n" + format_result(result) if notes else format_result(result))
    return 0 if result.clips and not result.rejected else 1


def _explain(result, bundle, out_dir: Path, config: AttributionConfig) -> None:
    """Write the attribution files; say on stderr what was written (stdout may be JSON)."""
    import sys

    from ..attribution_media import explain_study

    written, problems = explain_study(result, bundle, out_dir, config)
    for line in problems:
        print(line, file=sys.stderr)
    print(f"explain: wrote {len(written)} files to {out_dir}", file=sys.stderr)


def _published_options(bundle, sources: list, items: list, windows: int):
    """A published-weights bundle's options (contract AVIs go in unchanged); None for others."""
    if not bundle.meta.get("official"):
        return None
    from ..official_infer import PublishedOptions, published_inputs

    return PublishedOptions(published_inputs(sources, items), max(0, windows))


def published_notes(meta: dict, published) -> dict[str, str]:
    """What a published-weights run is, in words (empty for bundles trained here)."""
    if published is None:
        return {}
    from ..official import MODEL_LABEL, fusion_note

    return {"model": f"model: {MODEL_LABEL}", "mode": f"mode: {published.mode_label}", "fusion": fusion_note(meta)}


def format_result(result) -> str:
    """Plain-text report for the terminal."""
    lines = []
    if result.synthetic:
        lines.append("NOTE: this model was trained on SYNTHETIC data; its outputs are not clinical findings.")
    for clip in result.clips:
        if clip.used_for:
            use = f"feeds the {clip.used_for} model"
        elif clip.awaiting_confirmation:
            use = f"left out of fusion until its view is confirmed (--view {clip.index + 1}=VIEW)"
        else:
            use = f"left out: {clip.left_out}"
        lines.append(f"{clip.display_name}: view {clip.view} ({clip.view_confidence:.0%}"
                     f"{', set by user' if clip.view_overridden else ''}), {clip.clip.n_frames} frames; {use}")
    for name, reason in result.rejected:
        lines.append(f"{name}: rejected: {reason}")
    lines.append(f"{'target':<22}{'global':>10}  {'≥ threshold':>10}  call")
    for p in result.fused.values():
        value = f"{p.value:.2f}" if p.kind == "binary" else f"{p.value:.1f} {p.unit}"
        threshold = "" if p.threshold is None else (f"{p.threshold:.2f}" if p.kind == "binary" else f"{p.threshold:g}")
        lines.append(f"{p.label:<22}{value:>10}  {threshold:>10}  {p.status}")
    total = sum(result.timings.values())
    lines.append(f"time: {total:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in result.timings.items())})")
    return "\n".join(lines)
