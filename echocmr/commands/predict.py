"""``echocmr predict FILES…``: one study's files → per-clip views, per-view and fused predictions."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="predict CMR findings for one echo study (DICOM / AVI / MP4 files or a zip)",
        description="Ingest the files of one study, classify each clip's view, run the per-view models and fuse.")
    p.add_argument("files", nargs="+", type=Path, help="the study's files (a zip counts as many)")
    p.add_argument("--model", type=Path, help="model bundle folder (default: the active bundle)")
    p.add_argument("--view", action="append", default=[], metavar="N=VIEW",
                   help="override the view of clip N (1-based), e.g. --view 2=A2C; repeatable")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--windows", type=int, default=0, metavar="N",
                   help="published-weights bundles: average N windows per video (test-time averaging, "
                        "not the published protocol; default 0 = exact: first 32 frames, stride 2)")
    p.set_defaults(func=run)


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
    from ..predict import ingest_study, predict_study

    started = time.perf_counter()
    bundle = load_bundle(str(args.model or active_bundle_dir()))
    loaded = time.perf_counter()
    items = ingest_study([(f"file {i + 1}", path) for i, path in enumerate(args.files)])
    ingested = time.perf_counter()
    published = None
    if bundle.meta.get("official"):  # a published-weights bundle: contract AVIs go in unchanged
        from ..official_infer import PublishedOptions, published_inputs

        sources = [(f"file {i + 1}", path) for i, path in enumerate(args.files)]
        published = PublishedOptions(published_inputs(sources, items), max(0, args.windows))
    result = predict_study(items, bundle, _overrides(args.view), published=published)
    result.timings = {"model_load": loaded - started, "ingest": ingested - loaded, **result.timings}
    notes = published_notes(bundle.meta, published)
    if args.json:
        print(json.dumps({**result.to_json(), **({"model": notes} if notes else {})}, indent=2))
    else:
        print("\n".join(notes.values()) + "\n" + format_result(result) if notes else format_result(result))
    return 0 if result.clips and not result.rejected else 1


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
        waiting = (f"; left out of fusion until its view is confirmed (--view {clip.index + 1}=VIEW)"
                   if clip.awaiting_confirmation else "")
        lines.append(f"{clip.display_name}: view {clip.view} ({clip.view_confidence:.0%}"
                     f"{', set by user' if clip.view_overridden else ''}), {clip.clip.n_frames} frames{waiting}")
    for name, reason in result.rejected:
        lines.append(f"{name}: rejected: {reason}")
    lines.append(f"{'target':<22}{'global':>10}  {'threshold':>10}  call")
    for p in result.fused.values():
        value = f"{p.value:.2f}" if p.kind == "binary" else f"{p.value:.1f} {p.unit}"
        threshold = "" if p.threshold is None else (f"{p.threshold:.2f}" if p.kind == "binary" else f"{p.threshold:g}")
        call = "" if p.call is None else ("above" if p.call else "below")
        lines.append(f"{p.label:<22}{value:>10}  {threshold:>10}  {call}")
    total = sum(result.timings.values())
    lines.append(f"time: {total:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in result.timings.items())})")
    return "\n".join(lines)
