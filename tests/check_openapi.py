#!/usr/bin/env python3
"""Checks docs/openapi.yaml: a valid OpenAPI 3.1 document whose operations are exactly the routes
the router serves (`alert-button routes`), with staff security on exactly the staff routes.

Usage: check_openapi.py OPENAPI ROUTER_ROUTES_FILE
"""

import pathlib
import sys

import yaml
from openapi_spec_validator import validate

METHODS = {"get", "put", "post", "delete", "patch"}


def main():
    document = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text())
    validate(document)
    documented = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            who = "staff" if schemes == {"staffJwt"} else "anyone"
            documented.add((method.upper(), path, who))
    served = set()
    for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
        parts = line.split()
        if parts:
            served.add((parts[0], parts[1], parts[2] if len(parts) > 2 else "anyone"))
    if documented != served:
        print(f"only documented: {sorted(documented - served)}")
        print(f"only served: {sorted(served - documented)}")
        print("0 passed, 1 failed")
        sys.exit(1)
    print(f"docs/openapi.yaml is valid and documents the {len(served)} routes the router serves")


if __name__ == "__main__":
    main()
