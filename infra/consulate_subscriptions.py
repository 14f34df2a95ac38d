#!/usr/bin/env python3
"""Writes the consulate-endpoint sections of infra/template.yaml from data/consulates.csv.

Each office gets a parameter (its duty desk's endpoint, empty by default), a condition, and an SNS
subscription with the office's filter policy and the subscriptions' dead-letter queue. CloudFormation
cannot ask for authenticated unsubscribe: confirm each e-mail subscription as infra/RUNBOOK.md says. Run it after adding an office to the directory; the
test command fails while the template and the directory disagree.

    python3 infra/consulate_subscriptions.py
"""

import csv
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
DIRECTORY = ROOT / "data" / "consulates.csv"


def camel(consulate_id: str) -> str:
    return "".join(part.capitalize() for part in consulate_id.split("-"))


def sections(offices):
    parameters, conditions, subscriptions = [], [], []
    for office in offices:
        name = camel(office["id"])
        parameters += [
            f"  ConsulateEndpoint{name}:",
            "    Type: String",
            '    Default: ""',
            f"    Description: Duty endpoint of {office['name']} ({office['id']})",
        ]
        conditions.append(
            f'  HasConsulateEndpoint{name}: !Not [!Equals [!Ref ConsulateEndpoint{name}, ""]]'
        )
        subscriptions += [
            f"  ConsulateSubscription{name}:",
            "    Type: AWS::SNS::Subscription",
            f"    Condition: HasConsulateEndpoint{name}",
            "    Properties:",
            "      TopicArn: !Ref AlertsTopic",
            "      Protocol: !Ref ConsulateEndpointProtocol",
            f"      Endpoint: !Ref ConsulateEndpoint{name}",
            "      FilterPolicyScope: MessageAttributes",
            "      FilterPolicy:",
            '        audience: ["consulate"]',
            f'        consulate_id: ["{office["id"]}"]',
            "      RedrivePolicy:",
            "        deadLetterTargetArn: !GetAtt SubscriptionDeadLetterQueue.Arn",
        ]
    return {
        "consulate endpoint parameters": parameters,
        "consulate endpoint conditions": conditions,
        "consulate subscriptions": subscriptions,
    }


def render(template: str, offices) -> str:
    for marker, lines in sections(offices).items():
        pattern = re.compile(
            rf"(?P<indent>[ ]*)# BEGIN {marker}[^\n]*\n.*?(?P=indent)# END {marker}\n", re.S
        )
        match = pattern.search(template)
        if not match:
            sys.exit(f"{TEMPLATE}: no `# BEGIN {marker}` / `# END {marker}` section")
        indent = match.group("indent")
        head = template[match.start() : template.index("\n", match.start()) + 1]
        body = "".join(line + "\n" for line in lines)
        template = (
            template[: match.start()] + head + body + f"{indent}# END {marker}\n" + template[match.end() :]
        )
    return template


def main() -> None:
    offices = list(csv.DictReader(DIRECTORY.open(encoding="utf-8")))
    current = TEMPLATE.read_text(encoding="utf-8")
    wanted = render(current, offices)
    if "--check" in sys.argv:
        if wanted != current:
            sys.exit(
                "infra/template.yaml does not match data/consulates.csv: "
                "run python3 infra/consulate_subscriptions.py"
            )
        print(f"template has an endpoint for each of the {len(offices)} offices")
        return
    TEMPLATE.write_text(wanted, encoding="utf-8")
    print(f"wrote endpoints for {len(offices)} offices")


if __name__ == "__main__":
    main()
