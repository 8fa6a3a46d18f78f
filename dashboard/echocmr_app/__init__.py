"""Helpers of the EchoCMR app's pages (``dashboard/app_pages``), importable because Streamlit puts
``dashboard/`` on ``sys.path``. The package name is the app's own, so no helper module can shadow an
installed library (a top-level ``tables`` once hid PyPI's ``tables``, which pandas imports).

* :mod:`echocmr_app.loaders` — cached loaders (active model bundle, JSON files, folders);
* :mod:`echocmr_app.layout` — page furniture (banner, clips, images, figures, downloads);
* :mod:`echocmr_app.formatting` — numbers, times, states as text;
* :mod:`echocmr_app.study_cache` — one uploaded study's ingest and prediction, cached;
* :mod:`echocmr_app.charts`, :mod:`echocmr_app.study_tables` — figures and tables.

Pages draw; the science stays in ``echocmr``.
"""
