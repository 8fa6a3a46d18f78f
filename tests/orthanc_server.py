"""A real Orthanc PACS with its DICOMweb plugin on 127.0.0.1, for the PACS tests.

Started from the Debian packages ``orthanc`` and ``orthanc-dicomweb`` (``.ci/run`` installs
them) with a temporary storage folder, a free HTTP port, the DICOM port disabled, remote access
refused and HTTP basic authentication on. Instances are loaded through its REST API.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc/plugins")
USER, PASSWORD = "researcher", "pacs-secret-7781"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dicomweb_plugin() -> Path | None:
    for folder in PLUGIN_DIRS:
        path = Path(folder) / "libOrthancDicomWeb.so"
        if path.exists():
            return path
    return None


def orthanc_available() -> bool:
    return shutil.which("Orthanc") is not None and dicomweb_plugin() is not None


@dataclass
class Orthanc:
    root: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    log: Path

    @property
    def dicomweb(self) -> str:
        return self.root + "/dicom-web"

    def _request(self, path: str, data: bytes | None = None, method: str | None = None) -> bytes:
        request = urllib.request.Request(self.root + path, data=data, method=method)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def upload(self, data: bytes) -> dict:
        """Store one DICOM instance through the REST API (POST /instances)."""
        return json.loads(self._request("/instances", data, "POST"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_orthanc(folder: Path) -> Orthanc:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "echocmr-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
        "HttpPort": port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [str(dicomweb_plugin())], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "HttpThreadsCount": 4, "ConcurrentJobs": 1, "StorageCompression": False,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = folder / "orthanc.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=out, stderr=subprocess.STDOUT)
    server = Orthanc(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Orthanc exited at start:\n" + log.read_text()[-2000:])
        try:
            server._request("/system")
            return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.3)
    server.stop()
    raise RuntimeError("Orthanc did not answer within 60 s:\n" + log.read_text()[-2000:])


needs_orthanc = pytest.mark.skipif(not orthanc_available(),
                                   reason="Orthanc + DICOMweb plugin not installed (.ci/run installs them)")
