"""The integration harness's Python program: one stack that declares every webhook the harness
plans for Python, on the generated Python SDK.

The hooks come from the stack's configuration, so the harness changes them between `pulumi up`s
by changing configuration only. Each hook names the provider it is managed through: "embedded"
(the SQLite store the server also uses) or "remote" (the server's REST API).
"""

import pulumi

import pulumi_webhooks_pulumiservice as pulumiservice

config = pulumi.Config()
hooks = config.require_object("hooks")
secrets = config.require_secret_object("hookSecrets")

providers = {
    "embedded": pulumiservice.Provider("embedded", store_path=config.require("storePath")),
    "remote": pulumiservice.Provider(
        "remote", api_url=config.require("apiUrl"), access_token=config.require_secret("accessToken")
    ),
}


def secret_of(key):
    """The hook's secret, kept secret: an output of the secret configuration value."""
    if not key:
        return None
    return secrets.apply(lambda s: s[key])


ids = {}
for h in hooks:
    fmt = h.get("format")
    hook = pulumiservice.Webhook(
        h["name"],
        organization_name=h["organizationName"],
        project_name=h.get("projectName"),
        stack_name=h.get("stackName"),
        environment_name=h.get("environmentName"),
        display_name=h["displayName"],
        payload_url=h["payloadUrl"],
        active=h["active"],
        # The SDK's enums take the wire values; an unknown value fails here, in the program.
        format=pulumiservice.WebhookFormat(fmt) if fmt else None,
        filters=[pulumiservice.WebhookFilters(f) for f in h["filters"]] if h.get("filters") else None,
        groups=[pulumiservice.WebhookGroup(g) for g in h["groups"]] if h.get("groups") else None,
        secret=secret_of(h.get("secretKey")),
        opts=pulumi.ResourceOptions(provider=providers[h["provider"]]),
    )
    ids[h["name"]] = hook.id

pulumi.export("hookIds", ids)
