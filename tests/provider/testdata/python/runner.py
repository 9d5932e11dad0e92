"""Runs one Automation API operation on an inline program that executes the example's
__main__.py. The CLI runs it with --client, so no Python language host is used.

    python runner.py '<params JSON>'   prints {"changes": {...}, "outputs": {...}} on stdout
"""

import json
import runpy
import sys

import pulumi.automation as auto


def main() -> None:
    p = json.loads(sys.argv[1])

    def program() -> None:
        runpy.run_path(p["program"], run_name="__main__")

    stack = auto.create_or_select_stack(
        stack_name=p["stack"], project_name=p["project"], program=program, work_dir=p["workDir"]
    )
    stack.set_all_config(
        {k: auto.ConfigValue(value=v["value"], secret=v.get("secret", False)) for k, v in p["config"].items()}
    )
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    action = p["action"]
    if action == "up":
        r = stack.up(on_output=log)
        result = {
            "changes": r.summary.resource_changes,
            "outputs": {k: v.value for k, v in r.outputs.items()},
        }
    elif action == "preview":
        r = stack.preview(on_output=log, expect_no_changes=True)
        result = {"changes": r.change_summary}
    elif action == "destroy":
        r = stack.destroy(on_output=log)
        result = {"changes": r.summary.resource_changes}
    else:
        raise SystemExit(f"unknown action {action}: use up, preview or destroy")
    # change_summary keys are OpType enums, resource_changes keys plain strings.
    result["changes"] = {str(getattr(k, "value", k)): n for k, n in (result["changes"] or {}).items()}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
