"""The report JSON Schema as package data: installed as ``mgn_verify.schema`` (pyproject maps it
here, so the file stays next to the format docs in reports/). Load it with::

    import importlib.resources, json
    schema = json.loads((importlib.resources.files("mgn_verify.schema") / "report-v1.json").read_text())
"""
