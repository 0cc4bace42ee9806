"""Validates BlockDB's OpenAPI document as OpenAPI 3.1, generates a Python client from it with
openapi-python-client, and uses that client against a running node.

    python openapi/check_client.py openapi/blockdb.json http://127.0.0.1:7070 OUT_DIR

Run by `cargo test -p blockdb-server --test openapi` with the tools `make openapi-tools` installs.
"""

import base64
import importlib
import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    doc_path, base_url, out_dir = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    doc = json.loads(doc_path.read_text())

    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    validate(doc, cls=OpenAPIV31SpecValidator)
    print(f"valid OpenAPI {doc['openapi']}: {len(doc['paths'])} paths")

    subprocess.run(
        ["openapi-python-client", "generate", "--path", str(doc_path),
         "--output-path", str(out_dir / "client"), "--meta", "none", "--overwrite"],
        check=True, cwd=out_dir,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    sys.path.insert(0, str(out_dir))
    client_pkg = importlib.import_module("client")
    api_records = importlib.import_module("client.api.records")
    models = importlib.import_module("client.models")
    operations = sorted(p.stem for p in Path(api_records.__path__[0]).glob("*.py") if not p.stem.startswith("_"))
    print("generated client operations (records):", ", ".join(operations))

    client = client_pkg.Client(base_url=base_url.rstrip("/"))
    key = base64.b64encode(b"from-generated-client").decode()
    value = base64.b64encode(b"hello").decode()
    insert = importlib.import_module("client.api.records.insert")
    written = insert.sync(client=client, body=models.InsertBody(key=key, value=value))
    assert written is not None and written.version == 1, written
    get_record = importlib.import_module("client.api.records.get_record")
    bundle = get_record.sync(client=client, key=key)
    assert bundle is not None and bundle.record.version == 1, bundle
    assert base64.b64decode(bundle.record.value) == b"hello"
    print("generated client: insert and get_record work; log index", written.log_index)


if __name__ == "__main__":
    main()
