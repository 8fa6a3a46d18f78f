"""EchoCMR: predict cardiac MRI findings from echocardiography videos.

Data flows one way through the package:
file -> frames -> clip (ingest) -> model (models) -> per-view prediction (predict)
-> fused prediction (fusion) -> metrics (metrics, evaluate) -> page (dashboard/).
"""

__version__ = "0.1.0"
