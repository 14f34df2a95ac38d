#!/usr/bin/env python3
"""Offline checks of infra/template.yaml, run by tests/run.sh.

1. cfn-lint on the SAM template.
2. The SAM template translated to plain CloudFormation (aws-sam-translator) and linted again, because
   cfn-lint looks only shallowly inside AWS::Serverless resources; a deliberately broken reference
   inside a function's properties must make this step fail.
3. The template's HTTP routes are exactly the routes the router serves (`alert-button routes`).
4. No IAM statement of ours grants `Resource: "*"`.
5. Every office of data/consulates.csv has its endpoint parameter and subscription.
6. Operability: alarms on every silent failure, a dashboard, per-route throttles, reserved
   concurrency, gradual deploys that roll back, retained stateful resources, log data protection,
   subscription dead letters, and a runbook that explains every alarm.
7. Texts: a registered origination number with its opt-out list and two-way replies, a protect
   configuration that lets texts reach the US and Mexico only, and the number handed to the fan-out.
8. The staff API function serves the staff routes and nothing else, and its role only lets it read,
   list and change alerts.

Usage: check_template.py TEMPLATE ROUTER_ROUTES_FILE
"""

import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import tomllib

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
failures = []
checks = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
    checks.append(name)
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


def of_type(template, kind):
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def refers_to(value, name):
    """True when a (possibly intrinsic) value references resource `name` (Ref, GetAtt or Sub)."""
    text = json.dumps(value)
    return f'"Ref": "{name}"' in text or f'"{name}",' in text or f"${{{name}" in text or f'"{name}.' in text


def alarm_metrics(alarm):
    """(namespace, metric name, dimensions as a dict) of every metric an alarm reads."""
    props = alarm["Properties"]
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        yield props.get("Namespace"), props["MetricName"], dims
    for query in props.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric.get("Namespace"), metric["MetricName"], dims


def parameter_default(template, value):
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]].get("Default")
    return value


IDENTIFIERS = ("EmailAddress", "PhoneNumber-US", "LatLong")


def data_protection_problems(name, group):
    policy = group["Properties"].get("DataProtectionPolicy")
    if not policy:
        return [f"{name}: no DataProtectionPolicy"]
    problems = []
    operations = {}
    for statement in policy.get("Statement", []):
        for operation in statement.get("Operation", {}):
            operations[operation] = json.dumps(statement.get("DataIdentifier"))
    if set(operations) != {"Audit", "Deidentify"}:
        problems.append(f"{name}: wants one Audit and one Deidentify statement, has {sorted(operations)}")
    for operation, identifiers in operations.items():
        missing = [i for i in IDENTIFIERS if f"data-identifier/{i}" not in identifiers]
        if missing:
            problems.append(f"{name}/{operation}: does not mask {missing}")
    return problems


def without_name_and_key(properties):
    properties = copy.deepcopy(properties)
    properties.pop("TableName", None)
    properties.get("SSESpecification", {}).pop("KMSMasterKeyId", None)
    return properties


def restore_import_problems(template, runbook):
    """The RUNBOOK's `import.yaml` must stay the template's AlertsTable, or an import then a deploy
    would replace the restored table instead of adopting it."""
    marker = "Save this as\n   `import.yaml`"
    if marker not in runbook:
        return ["no import.yaml block in RUNBOOK.md"]
    block = runbook.split(marker, 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    text = "\n".join(line[3:] for line in block.splitlines())
    imported = yaml_parse(text)
    table = imported.get("Resources", {}).get("AlertsTable", {})
    problems = []
    if table.get("DeletionPolicy") != "Retain":
        problems.append("the imported table needs DeletionPolicy: Retain")
    if table.get("Properties", {}).get("TableName") != {"Ref": "TableName"}:
        problems.append("the imported table must be named by the TableName parameter")
    if without_name_and_key(table.get("Properties", {})) != without_name_and_key(
        template["Resources"]["AlertsTable"]["Properties"]
    ):
        problems.append("its properties differ from template.yaml's AlertsTable")
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / "import.yaml"
        path.write_text(text)
        ok, detail = cfn_lint(path)
        if not ok:
            problems.append(f"cfn-lint: {detail}")
    return problems


def operability(template, infra):
    resources = template["Resources"]
    functions = of_type(template, "AWS::Serverless::Function")
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    queues = of_type(template, "AWS::SQS::Queue")

    silent = [n for n, a in alarms.items() if not refers_to(a["Properties"].get("AlarmActions"), "OperatorsTopic")]
    check("at least 8 alarms, each telling the operators' topic", len(alarms) >= 8 and not silent,
          f"{len(alarms)} alarms; without the operators' topic: {silent}")

    metrics = [(n, ns, m, d) for n, a in alarms.items() for ns, m, d in alarm_metrics(a)]

    def watched(namespace, metric, dimension=None, target=None):
        return [
            n for n, ns, m, d in metrics
            if ns == namespace and m == metric
            and (dimension is None or refers_to(d.get(dimension), target))
        ]

    unwatched = [
        f"{metric} of {fn}"
        for fn in functions
        for metric in ("Errors", "Throttles")
        if not watched("AWS/Lambda", metric, "FunctionName", fn)
    ]
    check("every function's errors and throttles raise an alarm", not unwatched, ", ".join(unwatched))

    check("the fan-out's stream iterator age raises an alarm",
          bool(watched("AWS/Lambda", "IteratorAge", "FunctionName", "NotificationFanoutFunction")))
    check("API 5xx and 4xx spikes raise alarms",
          bool(watched("AWS/ApiGateway", "5xx", "ApiId", "HttpApi"))
          and bool(watched("AWS/ApiGateway", "4xx", "ApiId", "HttpApi")))

    heartbeats = [
        n for n in watched("AWS/Lambda", "Invocations", "FunctionName", "AlertEscalationFunction")
        if alarms[n]["Properties"].get("TreatMissingData") == "breaching"
        and alarms[n]["Properties"].get("ComparisonOperator") == "LessThanThreshold"
    ]
    check("a missed escalation sweep (no invocations, missing data breaching) raises an alarm", bool(heartbeats))

    sns = [m for m in ("NumberOfNotificationsFailed", "SMSMonthToDateSpentUSD", "SMSSuccessRate")
           if not watched("AWS/SNS", m)]
    check("SNS delivery failures, SMS spend and SMS success rate raise alarms", not sns, f"missing {sns}")

    stuck = [
        q for q in queues
        if not any(refers_to(d.get("QueueName"), q) for n, ns, m, d in metrics
                   if ns == "AWS/SQS" and m == "NumberOfMessagesSent")
    ]
    check("every dead-letter queue alarms on each new message (re-arming, on NumberOfMessagesSent)",
          bool(queues) and not stuck, f"not re-arming: {stuck}")

    dashboards = of_type(template, "AWS::CloudWatch::Dashboard")
    body = json.dumps([d["Properties"].get("DashboardBody") for d in dashboards.values()])
    namespaces = ("AWS/Lambda", "AWS/ApiGateway", "AWS/SNS", "AWS/DynamoDB", "AWS/SQS")
    missing = [ns for ns in namespaces if ns not in body]
    check("a dashboard shows Lambda, API, SNS, DynamoDB and SQS", bool(dashboards) and not missing,
          f"{len(dashboards)} dashboards, missing {missing}")

    # The functions' own counts (embedded metric format, core/src/metrics.rs): every metric the
    # code emits is on the dashboard, in the code's namespace, with the function as only dimension.
    code = (ROOT / "core/src/metrics.rs").read_text()
    namespace = code.split('NAMESPACE: &str = "')[1].split('"')[0]
    emitted = sorted({part.split('"')[0] for part in code.split('Some("')[1:]})
    lines = [m for m in body_metrics(dashboards) if m[:1] == [namespace]]
    shown = {m[1] for m in lines}
    bad_dimensions = [m for m in lines if [x for x in m[2::2] if isinstance(x, str)] != ["Function"]]
    check("the dashboard shows alerts opened, acknowledged and escalated per minute (EMF)",
          {"AlertsOpened", "AlertsAcknowledged", "AlertsEscalated"} <= set(emitted)
          and set(emitted) <= shown and not bad_dimensions,
          f"namespace {namespace}: emitted {emitted}, shown {sorted(shown)}, other dimensions {bad_dimensions}")

    routes = resources["HttpApi"]["Properties"].get("RouteSettings", {})

    def rate(route_key):
        settings = routes.get(route_key) or resources["HttpApi"]["Properties"]["DefaultRouteSettings"]
        return parameter_default(template, settings.get("ThrottlingRateLimit"))

    alert = rate("POST /v1/alerts")
    crowded = [k for k in ("POST /v1/people", "POST /v1/checkins") if k not in routes or not rate(k) < alert]
    check("registration and check-in creation are throttled below POST /v1/alerts (RouteSettings)",
          not crowded, f"not throttled apart: {crowded}")

    unreserved = [
        n for n in ("NotificationFanoutFunction", "AlertEscalationFunction")
        if "ReservedConcurrentExecutions" not in functions[n]["Properties"]
    ]
    check("the fan-out and the escalation sweep have reserved concurrency", not unreserved, ", ".join(unreserved))

    unnamed = [
        f"{fn}/{en}"
        for fn, f in functions.items()
        for en, e in f["Properties"].get("Events", {}).items()
        if e.get("Type") == "ScheduleV2" and e["Properties"].get("OmitName") is not True
    ]
    check("schedules omit their names, so two stacks can share an account", not unnamed, ", ".join(unnamed))

    ungradual = [
        n for n, f in functions.items()
        if not f["Properties"].get("AutoPublishAlias")
        or not f["Properties"].get("DeploymentPreference", {}).get("Alarms")
    ]
    mapping = resources["FanoutStreamMapping"]["Properties"]["FunctionName"]
    check("every function deploys gradually through an alias and rolls back on alarms", not ungradual,
          ", ".join(ungradual))
    check("the stream mapping invokes the fan-out's alias", mapping == {"Ref": "NotificationFanoutFunction.Alias"},
          json.dumps(mapping))

    unretained = [
        n for n in ["AlertsTable", "StaffUserPool", "DataKey", *queues]
        if resources[n].get("DeletionPolicy") != "Retain" or resources[n].get("UpdateReplacePolicy") != "Retain"
    ]
    check("table, user pool, key and dead-letter queues are retained", not unretained, ", ".join(unretained))
    check("deletion protection on the table and the user pool",
          resources["AlertsTable"]["Properties"].get("DeletionProtectionEnabled") is True
          and resources["StaffUserPool"]["Properties"].get("DeletionProtection") == "ACTIVE")
    table_name = template["Parameters"].get("TableName", {})
    check("the table name is a parameter (empty: generated), for a restored table",
          table_name.get("Default") == "" and "TableName" in json.dumps(resources["AlertsTable"]["Properties"]))

    groups = of_type(template, "AWS::Logs::LogGroup")
    problems = [p for n, g in groups.items() for p in data_protection_problems(n, g)]
    check("every log group masks e-mail addresses, phone numbers and coordinates", bool(groups) and not problems,
          "; ".join(problems))

    subscriptions = of_type(template, "AWS::SNS::Subscription")
    no_redrive = [
        n for n, s in subscriptions.items() if n != "OperatorsEmail" and "RedrivePolicy" not in s["Properties"]
    ]
    check("every notification subscription has a dead-letter queue", not no_redrive, ", ".join(no_redrive))
    queue_policies = json.dumps(list(of_type(template, "AWS::SQS::QueuePolicy").values()))
    check("SNS may send to the subscriptions' dead-letter queue",
          "sns.amazonaws.com" in queue_policies and "sqs:SendMessage" in queue_policies)

    runbook_path = infra / "RUNBOOK.md"
    runbook = runbook_path.read_text() if runbook_path.exists() else ""
    unexplained = [n for n in alarms if f"`{n}`" not in runbook]
    check("the runbook explains every alarm", bool(runbook) and not unexplained,
          f"not in RUNBOOK.md: {unexplained}")
    check("the runbook confirms consulate e-mail subscriptions with authenticated unsubscribe",
          "--authenticate-on-unsubscribe" in runbook)

    import_problems = restore_import_problems(template, runbook)
    check("the runbook's import template is the template's table (restore path)", not import_problems,
          "; ".join(import_problems))

    samconfig = infra / "samconfig.toml"
    try:
        config = tomllib.loads(samconfig.read_text())
        deploy = config["default"]["deploy"]["parameters"]
        ok = all(k in deploy for k in ("stack_name", "capabilities", "parameter_overrides"))
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        ok = False
    check("infra/samconfig.toml gives sam deploy its defaults", ok)


def body_metrics(dashboards):
    """Every metric line of the dashboards' widgets, with `${...}` references left as text."""
    found = []
    for dashboard in dashboards.values():
        body = dashboard["Properties"]["DashboardBody"]
        if isinstance(body, dict) and "Fn::Sub" in body:
            body = body["Fn::Sub"]
        for widget in json.loads(body)["widgets"]:
            found.extend(m for m in widget.get("properties", {}).get("metrics", []) if isinstance(m, list))
    return found


def web_hosting(template):
    """The pages on S3 behind CloudFront: a private bucket read only through the distribution's
    origin access control, the API's CORS limited to that origin, and the staff app client allowing
    managed login (authorization code, which a public client completes with PKCE) back to the console."""
    resources = template["Resources"]
    buckets = of_type(template, "AWS::S3::Bucket")
    distributions = of_type(template, "AWS::CloudFront::Distribution")
    check("the pages have a bucket and a CloudFront distribution", len(buckets) == 1 and len(distributions) == 1)
    if len(buckets) != 1 or len(distributions) != 1:
        return
    (bucket_name, bucket), = buckets.items()
    (dist_name, dist), = distributions.items()
    block = bucket["Properties"].get("PublicAccessBlockConfiguration", {})
    check("the pages' bucket blocks every public access",
          all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                               "RestrictPublicBuckets")))
    origins = dist["Properties"]["DistributionConfig"].get("Origins", [])
    check("CloudFront reads the bucket through an origin access control",
          len(origins) == 1 and refers_to(origins[0].get("DomainName"), bucket_name)
          and any(refers_to(origins[0].get("OriginAccessControlId"), n)
                  for n in of_type(template, "AWS::CloudFront::OriginAccessControl")))
    policies = [p for p in of_type(template, "AWS::S3::BucketPolicy").values()
                if refers_to(p["Properties"].get("Bucket"), bucket_name)]
    statements_ = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    allows = [s for s in statements_ if s.get("Effect") == "Allow"]
    check("only that distribution may read the bucket",
          bool(allows) and all(s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
                               and refers_to(s.get("Condition"), dist_name) for s in allows))
    cors = resources["HttpApi"]["Properties"].get("CorsConfiguration", {})
    origins_allowed = cors.get("AllowOrigins", []) if isinstance(cors, dict) else []
    check("the API's CORS allows only the pages' origin",
          len(origins_allowed) == 1 and refers_to(origins_allowed[0], dist_name))
    client = resources["StaffUserPoolClient"]["Properties"]
    callbacks = client.get("CallbackURLs", [])
    check("the staff app client allows managed login with the code flow back to the console",
          client.get("AllowedOAuthFlowsUserPoolClient") is True and client.get("AllowedOAuthFlows") == ["code"]
          and client.get("GenerateSecret") is False and "openid" in client.get("AllowedOAuthScopes", [])
          and bool(callbacks) and all(refers_to(c, dist_name) and "/console" in json.dumps(c) for c in callbacks))
    check("the user pool has a managed login domain",
          any(refers_to(d["Properties"].get("UserPoolId"), "StaffUserPool")
              for d in of_type(template, "AWS::Cognito::UserPoolDomain").values()))


SERVED_COUNTRIES = {"US", "MX"}


def texts(template):
    """A sendable SMS origination: End User Messaging SMS resources that carriers and SNS need."""
    resources = template["Resources"]
    numbers = of_type(template, "AWS::SMSVOICE::PhoneNumber")
    pools = of_type(template, "AWS::SMSVOICE::Pool")
    check("an End User Messaging SMS phone number or pool", bool(numbers) or bool(pools))
    opt_outs = of_type(template, "AWS::SMSVOICE::OptOutList")
    check("an opt-out list, retained with the stack", len(opt_outs) == 1
          and all(r.get("DeletionPolicy") == "Retain" and r.get("UpdateReplacePolicy") == "Retain"
                  for r in opt_outs.values()))
    if not numbers or len(opt_outs) != 1:
        return
    (opt_out_name, _), = opt_outs.items()
    topics = of_type(template, "AWS::SNS::Topic")
    identities = {**numbers, **pools}
    problems = []
    for name, identity in identities.items():
        props = identity["Properties"]
        if not refers_to(props.get("OptOutListName"), opt_out_name):
            problems.append(f"{name}: not on the opt-out list")
        if props.get("SelfManagedOptOutsEnabled") not in (None, False):
            problems.append(f"{name}: opt-outs managed by hand")
        keywords = props.get("MandatoryKeywords", {})
        help_ = str(parameter_default(template, keywords.get("HELP", {}).get("Message")))
        stop = str(parameter_default(template, keywords.get("STOP", {}).get("Message")))
        if "Alert Button" not in help_ or "STOP" not in help_ or "rates may apply" not in help_:
            problems.append(f"{name}: HELP does not name the program, the rates and how to opt out")
        if "START" not in stop:
            problems.append(f"{name}: STOP does not say how to come back")
        two_way = props.get("TwoWay", {})
        if two_way.get("Enabled") is not True or not any(refers_to(two_way.get("ChannelArn"), t) for t in topics):
            problems.append(f"{name}: replies reach no topic of the stack")
        if identity.get("DeletionPolicy") != "Retain" or props.get("DeletionProtectionEnabled") is not True:
            problems.append(f"{name}: a registered number must survive the stack (Retain, deletion protection)")
    check("the number keeps STOP/HELP, opt-outs and replies, and outlives the stack", not problems,
          "; ".join(problems))

    number_types = {json.dumps(n["Properties"].get("NumberType")) for n in numbers.values()}
    origination = template["Parameters"].get("SmsOrigination", {})
    check("toll-free by default; 10DLC and short code chosen by a parameter",
          origination.get("Default") == "toll-free"
          and {"10dlc", "short-code"} <= set(origination.get("AllowedValues", []))
          and all("TOLL_FREE" in t for t in number_types), f"{origination}, {number_types}")

    inbound = [
        t for t in topics
        if any(refers_to(i["Properties"].get("TwoWay", {}).get("ChannelArn"), t) for i in identities.values())
    ]
    policies = [
        s for p in of_type(template, "AWS::SNS::TopicPolicy").values()
        if any(refers_to(p["Properties"].get("Topics"), t) for t in inbound)
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    check("End User Messaging may publish replies to the replies topic, for this account only",
          bool(inbound) and any(
              s.get("Principal") == {"Service": "sms-voice.amazonaws.com"} and s.get("Action") == "sns:Publish"
              and "aws:SourceAccount" in json.dumps(s.get("Condition")) for s in policies))
    outputs = json.dumps(template.get("Outputs", {}))
    check("the replies topic is an output", any(f'"Ref": "{t}"' in outputs for t in inbound))

    protects = of_type(template, "AWS::SMSVOICE::ProtectConfiguration")
    rules = [r for p in protects.values() for r in p["Properties"].get("CountryRuleSet", {}).get("SMS", [])]
    passing = {r["CountryCode"]: r["ProtectStatus"] for r in rules if r["ProtectStatus"] != "BLOCK"}
    modes = {parameter_default(template, s) for s in passing.values()}
    blocked = {r["CountryCode"] for r in rules if r["ProtectStatus"] == "BLOCK"}
    # A new protect configuration allows every country: each one not served must be blocked.
    check("a protect configuration lets texts reach only the US and Mexico, filtering AIT",
          len(protects) == 1 and set(passing) == SERVED_COUNTRIES and modes == {"FILTER"}
          and len(blocked) >= 200 and {"CA", "GT", "CU", "GB", "CN", "NG"} <= blocked
          and not blocked & SERVED_COUNTRIES and len(rules) == len({r["CountryCode"] for r in rules}),
          f"passing {passing} (defaults {modes}), {len(blocked)} blocked")

    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    check("every function is given the countries texts reach and whether WhatsApp is on",
          refers_to(shared.get("ALERT_BUTTON_SMS_COUNTRIES"), "SmsCountries")
          and parameter_default(template, shared.get("ALERT_BUTTON_SMS_COUNTRIES")) == "US"
          and refers_to(shared.get("ALERT_BUTTON_WHATSAPP_PHONE_NUMBER_ID"), "WhatsAppPhoneNumberId"),
          json.dumps(shared))

    fanout = resources["NotificationFanoutFunction"]["Properties"]
    variables = (fanout.get("Environment") or {}).get("Variables") or {}
    origination_var = variables.get("ALERT_BUTTON_SMS_ORIGINATION")
    check("the fan-out is given the origination number",
          origination_var is not None and all(refers_to(origination_var, n) for n in numbers)
          and "SmsRegisteredNumber" in json.dumps(origination_var), json.dumps(origination_var))


def delivery_receipts(template):
    resources = template["Resources"]
    groups = {
        name: json.dumps(r["Properties"].get("LogGroupName"))
        for name, r in of_type(template, "AWS::Logs::LogGroup").items()
    }
    sms = {n for n, g in groups.items() if "DirectPublishToPhoneNumber" in g}
    check("the SNS SMS delivery-status log groups (delivered and /Failure) are in the template",
          any(g.endswith('DirectPublishToPhoneNumber"}') for n, g in groups.items() if n in sms)
          and any(g.endswith('DirectPublishToPhoneNumber/Failure"}') for n, g in groups.items() if n in sms))
    filters = of_type(template, "AWS::Logs::SubscriptionFilter").values()
    subscribed = {name for f in filters for name in sms if refers_to(f["Properties"].get("LogGroupName"), name)
                  and "DeliveryReceiptsFunction" in json.dumps(f["Properties"].get("DestinationArn"))}
    check("each SMS delivery-status group is subscribed to the receipts function", subscribed == sms and len(sms) == 2,
          f"subscribed: {sorted(subscribed)}")
    permissions = [p["Properties"] for p in of_type(template, "AWS::Lambda::Permission").values()
                   if refers_to(p["Properties"].get("FunctionName"), "DeliveryReceiptsFunction")]
    check("only CloudWatch Logs of this account may invoke the receipts function",
          len(permissions) == 1 and permissions[0].get("Principal") == "logs.amazonaws.com"
          and "SourceArn" in permissions[0] and "SourceAccount" in permissions[0])
    receipts = [s for name, s in statements(template) if name == "DeliveryReceiptsFunction"]
    table_actions = sorted(a for s in receipts for a in s.get("Action", []) if a.startswith("dynamodb:"))
    keys = [s.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            for s in receipts if any(a.startswith("dynamodb:") for a in s.get("Action", []))]
    check("the receipts function reads receipt pointers and updates sends, nothing else",
          table_actions == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
          and sorted(map(json.dumps, keys)) == ['["DELIVERY#*"]', '["RECEIPT#*"]'],
          f"{table_actions} {keys}")
    role = resources.get("SmsDeliveryStatusRole", {}).get("Properties", {})
    role_actions = sorted(a for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]
                          for a in s["Action"])
    check("SNS may write the SMS delivery-status logs, and only that",
          "sns.amazonaws.com" in json.dumps(role.get("AssumeRolePolicyDocument"))
          and role_actions == ["logs:CreateLogStream", "logs:PutLogEvents"], f"{role_actions}")


def channel_events(template):
    """WhatsApp (off without its number) and the receipts of WhatsApp and SES e-mail sends."""
    resources = template["Resources"]
    conditions = json.dumps(template.get("Conditions", {}).get("HasWhatsApp"))
    fanout = resources["NotificationFanoutFunction"]["Properties"]
    variables = (fanout.get("Environment") or {}).get("Variables") or {}
    guarded = [p["Fn::If"] for p in fanout.get("Policies", []) if isinstance(p, dict) and "Fn::If" in p]
    whatsapp = [s for condition, then, _ in guarded if condition == "HasWhatsApp" for s in then["Statement"]]
    everywhere = [s for name, s in statements(template) if name == "NotificationFanoutFunction"
                  and s not in whatsapp]
    check("WhatsApp is off without its number; then the fan-out may send from that number only",
          '"WhatsAppPhoneNumberId"' in conditions and '""' in conditions
          and [s["Action"] for s in whatsapp] == [["social-messaging:SendWhatsAppMessage"]]
          and "phone-number-id/" in json.dumps(whatsapp[0]["Resource"])
          and refers_to(whatsapp[0]["Resource"], "WhatsAppPhoneNumberId")
          and not any("social-messaging" in json.dumps(s) for s in everywhere),
          json.dumps(whatsapp))
    check("the fan-out is given the WhatsApp number, template prefix and e-mail configuration set",
          refers_to(variables.get("ALERT_BUTTON_WHATSAPP_PHONE_NUMBER_ID"), "WhatsAppPhoneNumberId")
          and refers_to(variables.get("ALERT_BUTTON_WHATSAPP_TEMPLATES"), "WhatsAppTemplatePrefix")
          and refers_to(variables.get("ALERT_BUTTON_EMAIL_CONFIGURATION_SET"), "FamilyEmailConfigurationSet"))

    topics = of_type(template, "AWS::SNS::Topic")
    receipts = resources["DeliveryReceiptsFunction"]["Properties"].get("Events", {}).values()
    subscribed = [e["Properties"]["Topic"] for e in receipts if e.get("Type") == "SNS"]
    check("the receipts function is subscribed to the channel events topic",
          len(subscribed) == 1 and refers_to(subscribed[0], "ChannelEventsTopic")
          and "KmsMasterKeyId" in topics.get("ChannelEventsTopic", {}).get("Properties", {}))
    policies = [s for p in of_type(template, "AWS::SNS::TopicPolicy").values()
                if any(refers_to(t, "ChannelEventsTopic") for t in p["Properties"]["Topics"])
                for s in p["Properties"]["PolicyDocument"]["Statement"]]
    publishers = sorted(s["Principal"]["Service"] for s in policies if s.get("Action") == "sns:Publish"
                        and "aws:SourceAccount" in json.dumps(s.get("Condition")))
    check("SES and End User Messaging Social may publish to it, for this account only",
          publishers == ["ses.amazonaws.com", "social-messaging.amazonaws.com"] and len(policies) == 2,
          f"{publishers}")
    key = json.dumps(resources["DataKey"]["Properties"]["KeyPolicy"])
    check("and may encrypt to it", bool(publishers) and all(p in key for p in publishers), "")
    destinations = [d["Properties"] for d in of_type(template, "AWS::SES::ConfigurationSetEventDestination").values()]
    check("a configuration set sends family e-mails' delivery, bounce, complaint and reject events to it",
          len(destinations) == 1
          and refers_to(destinations[0]["ConfigurationSetName"], "FamilyEmailConfigurationSet")
          and {"delivery", "bounce", "complaint", "reject"} <= set(destinations[0]["EventDestination"]["MatchingEventTypes"])
          and refers_to(destinations[0]["EventDestination"]["SnsDestination"]["TopicARN"], "ChannelEventsTopic"),
          json.dumps(destinations))
    outputs = json.dumps(template.get("Outputs", {}))
    check("the channel events topic is an output (the WhatsApp account's event destination)",
          '"Ref": "ChannelEventsTopic"' in outputs)


def staff_api(template):
    """The consulate staff's routes go to a function of their own, whose role reaches alerts only."""
    functions = of_type(template, "AWS::Serverless::Function")

    def served_by(name):
        return {
            (e["Properties"]["Method"].upper(), e["Properties"]["Path"],
             e["Properties"].get("Auth", {}).get("Authorizer"))
            for e in functions.get(name, {}).get("Properties", {}).get("Events", {}).values()
            if e.get("Type") == "HttpApi"
        }

    staff = served_by("StaffApiFunction")
    guarded = {(m, p) for fn in functions for m, p, who in served_by(fn) if who == "StaffJwt"}
    check("the staff routes are the staff API function's, each behind the staff authorizer",
          bool(staff) and {(m, p) for m, p, _ in staff} == guarded and all(who == "StaffJwt" for *_, who in staff),
          f"staff API: {sorted(staff, key=str)}; guarded: {sorted(guarded)}")
    intake_staff = [r for r in served_by("AlertIntakeFunction") if r[2] == "StaffJwt"]
    check("intake serves no staff route", not intake_staff, f"{intake_staff}")
    actions = sorted({a for name, s in statements(template) if name == "StaffApiFunction" for a in s.get("Action", [])})
    expected = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "kms:Decrypt", "kms:DescribeKey",
                "kms:Encrypt", "kms:GenerateDataKey*", "secretsmanager:GetSecretValue"]
    check("the staff API's role reads, lists and changes alerts, nothing else", actions == expected, f"{actions}")
    writes = [s for name, s in statements(template) if name == "StaffApiFunction"
              and "dynamodb:PutItem" in s.get("Action", [])]
    keys = [w.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys") for w in writes]
    check("the staff API writes alert items only", keys == [["ALERT#*", "warm-up"]], f"{keys}")


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

    operability(template, template_path.parent)
    web_hosting(template)
    texts(template)
    delivery_receipts(template)
    channel_events(template)
    staff_api(template)

    print(f"{len(checks) - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
