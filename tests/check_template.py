#!/usr/bin/env python3
"""Offline checks of infra/template.yaml, run by tests/run.sh.

1. cfn-lint on the SAM template.
2. The SAM template translated to plain CloudFormation (aws-sam-translator) and linted again, because
   cfn-lint looks only shallowly inside AWS::Serverless resources; a deliberately broken reference
   inside a function's properties must make this step fail.
3. The template's HTTP routes are exactly the routes the router serves (`alert-button routes`).
4. No IAM statement of ours grants `Resource: "*"`.
5. Every office of data/consulates.csv has its endpoint parameter and subscription.

Usage: check_template.py TEMPLATE ROUTER_ROUTES_FILE
"""

import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
failures = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def cfn_lint(path):
    result = subprocess.run(["cfn-lint", str(path)], capture_output=True, text=True)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


class NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only when a template names one; ours names none."""

    def load(self):
        return {}


def translate(template):
    template = copy.deepcopy(template)
    for name, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://alert-button-artifacts/{name}.zip"
    return transform(template, {}, NoManagedPolicies())


def translated_lint(template):
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / "translated.json"
        try:
            path.write_text(json.dumps(translate(template), indent=1))
        except Exception as err:  # the translator rejects some errors itself
            return False, f"translation failed: {err}"
        return cfn_lint(path)


def routes_in(template):
    """(method, path, who): who is "staff" where the JWT authorizer guards the route."""
    routes = set()
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                properties = event["Properties"]
                authorizer = properties.get("Auth", {}).get("Authorizer")
                who = "staff" if authorizer == "StaffJwt" else "anyone"
                routes.add((properties["Method"].upper(), properties["Path"], who))
    return routes


def statements(template):
    for name, resource in template["Resources"].items():
        for policy in resource.get("Properties", {}).get("Policies", []) or []:
            if isinstance(policy, dict) and "Fn::If" in policy:
                policy = policy["Fn::If"][1]
            if isinstance(policy, dict):
                for statement in policy.get("Statement", []):
                    yield name, statement


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template_path = pathlib.Path(sys.argv[1])
    router_routes = set()
    for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
        parts = line.split()
        if parts:
            router_routes.add((parts[0], parts[1], parts[2] if len(parts) > 2 else "anyone"))
    template = yaml_parse(template_path.read_text())

    ok, detail = cfn_lint(template_path)
    check("cfn-lint on the SAM template", ok, detail)

    ok, detail = translated_lint(template)
    check("cfn-lint on the translated CloudFormation", ok, detail)

    broken = copy.deepcopy(template)
    statement = broken["Resources"]["NotificationFanoutFunction"]["Properties"]["Policies"][0]["Statement"][1]
    statement["Resource"] = {"Fn::GetAtt": ["AlertsTabel", "StreamArn"]}
    ok, detail = translated_lint(broken)
    check("a broken !GetAtt inside a function's policy fails the check", not ok, "it passed")

    in_template = routes_in(template)
    check(
        "the template routes (and their authorizers) are the router's routes",
        in_template == router_routes,
        f"only in the template: {sorted(in_template - router_routes)}; "
        f"only in the router: {sorted(router_routes - in_template)}",
    )

    wildcards = [
        f"{name}/{s.get('Sid', '?')}" for name, s in statements(template) if s.get("Resource") in ("*", ["*"])
    ]
    check("no IAM statement grants Resource '*'", not wildcards, ", ".join(wildcards))

    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "consulate_subscriptions.py"), "--check"],
        capture_output=True,
        text=True,
    )
    check(
        "every office has a consulate endpoint and subscription",
        result.returncode == 0,
        (result.stdout + result.stderr).strip(),
    )

    print(f"{6 - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
